"""Bridges between blocking and async token streams — the one place that does this.

* :func:`sync_to_async`: a blocking iterator (a transformers ``generate`` loop) is driven by a
  dedicated thread; deltas cross to the event loop through ``call_soon_threadsafe``, so the loop
  never waits on the model. Closing the async iterator early (a client disconnected) sets the
  request's cancel flag, which the backend checks between tokens.
* :func:`async_to_sync`: an async generator (the OpenAI-compatible client) runs on a private
  event loop in a helper thread; the calling thread receives deltas from a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def sync_to_async(
    make_iterator: Callable[[], Iterator[str]], cancel: threading.Event
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deltas: asyncio.Queue[Any] = asyncio.Queue()

    def produce() -> None:
        try:
            for delta in make_iterator():
                loop.call_soon_threadsafe(deltas.put_nowait, delta)
                if cancel.is_set():
                    break
            loop.call_soon_threadsafe(deltas.put_nowait, _DONE)
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(deltas.put_nowait, _Failure(exc))

    worker = threading.Thread(target=produce, name="evs-decoder", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            item = await deltas.get()
            if item is _DONE:
                finished = True
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        if not finished:  # early exit (disconnect, error): stop the model between two tokens
            cancel.set()


def async_to_sync(
    make_agen: Callable[[], AsyncIterator[str]], cancel: threading.Event
) -> Iterator[str]:
    deltas: queue.Queue[Any] = queue.Queue()

    async def consume() -> None:
        agen = make_agen()
        try:
            async for delta in agen:
                deltas.put(delta)
                if cancel.is_set():
                    break
        finally:
            await agen.aclose()  # type: ignore[attr-defined]

    def run() -> None:
        try:
            asyncio.run(consume())
            deltas.put(_DONE)
        except BaseException as exc:
            deltas.put(_Failure(exc))

    worker = threading.Thread(target=run, name="evs-decoder-io", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            item = deltas.get()
            if item is _DONE:
                finished = True
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        if not finished:
            cancel.set()
        worker.join(timeout=5)
