"""The blocking <-> async token-stream bridges."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from eventvstream.language.streaming import async_to_sync, sync_to_async

WORDS = [f"w{i} " for i in range(50)]


class Boom(RuntimeError):
    pass


# -- sync_to_async -----------------------------------------------------------------------------
def collect_async(agen: AsyncIterator[str]) -> list[str]:
    async def run() -> list[str]:
        return [delta async for delta in agen]

    return asyncio.run(run())


def test_sync_to_async_preserves_order_and_leaves_cancel_clear() -> None:
    cancel = threading.Event()
    assert collect_async(sync_to_async(lambda: iter(WORDS), cancel)) == WORDS
    assert not cancel.is_set()


def test_sync_to_async_runs_the_model_off_the_event_loop() -> None:
    threads: list[str] = []

    def slow() -> Iterator[str]:
        threads.append(threading.current_thread().name)
        for word in WORDS[:5]:
            time.sleep(0.02)
            yield word

    async def run() -> tuple[list[str], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        out = [d async for d in sync_to_async(slow, threading.Event())]
        stop.set()
        await task
        return out, ticks

    out, ticks = asyncio.run(run())
    assert out == WORDS[:5]
    assert threads and threads[0] != threading.main_thread().name
    assert ticks >= 5  # the loop kept running while the iterator slept


def test_sync_to_async_propagates_exceptions() -> None:
    def failing() -> Iterator[str]:
        yield "a "
        yield "b "
        raise Boom("model crashed")

    cancel = threading.Event()
    seen: list[str] = []

    async def run() -> None:
        async for delta in sync_to_async(failing, cancel):
            seen.append(delta)

    with pytest.raises(Boom, match="model crashed"):
        asyncio.run(run())
    assert seen == ["a ", "b "]


def test_sync_to_async_early_exit_sets_cancel_and_stops_the_producer() -> None:
    cancel = threading.Event()
    produced: list[int] = []
    stopped = threading.Event()

    def endless() -> Iterator[str]:
        try:
            i = 0
            while True:
                produced.append(i)
                yield f"t{i} "
                i += 1
                time.sleep(0.005)
        finally:
            stopped.set()

    async def run() -> list[str]:
        agen = sync_to_async(endless, cancel)
        first = [await agen.__anext__(), await agen.__anext__()]
        await agen.aclose()  # the client went away
        return first

    assert asyncio.run(run()) == ["t0 ", "t1 "]
    assert cancel.is_set()
    assert stopped.wait(5), "the blocking iterator kept running after cancel"
    count = len(produced)
    time.sleep(0.05)
    assert len(produced) == count


# -- async_to_sync -----------------------------------------------------------------------------
def test_async_to_sync_preserves_order_and_leaves_cancel_clear() -> None:
    async def words() -> AsyncIterator[str]:
        for word in WORDS:
            await asyncio.sleep(0)
            yield word

    cancel = threading.Event()
    assert list(async_to_sync(words, cancel)) == WORDS
    assert not cancel.is_set()


def test_async_to_sync_runs_on_its_own_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def words() -> AsyncIterator[str]:
        loops.append(asyncio.get_running_loop())
        yield "x"

    async def caller() -> list[str]:  # called from inside another running loop
        return list(async_to_sync(words, threading.Event()))

    assert asyncio.run(caller()) == ["x"]
    assert len(loops) == 1


def test_async_to_sync_propagates_exceptions() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "a "
        raise Boom("endpoint failed")

    cancel = threading.Event()
    seen: list[str] = []
    with pytest.raises(Boom, match="endpoint failed"):
        for delta in async_to_sync(failing, cancel):
            seen.append(delta)
    assert seen == ["a "]


def test_async_to_sync_early_exit_sets_cancel_and_closes_the_generator() -> None:
    closed = threading.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            i = 0
            while True:
                yield f"t{i} "
                i += 1
                await asyncio.sleep(0.005)
        finally:
            closed.set()

    cancel = threading.Event()
    stream = async_to_sync(endless, cancel)
    assert [next(stream), next(stream)] == ["t0 ", "t1 "]
    started = time.monotonic()
    stream.close()  # the caller stopped reading
    assert cancel.is_set()
    assert closed.wait(5), "the async generator was never closed"
    assert time.monotonic() - started < 2.0


def test_bridges_compose() -> None:
    """sync -> async -> sync, as a backend's astream consumed through stream would be."""
    cancel = threading.Event()
    out = list(async_to_sync(lambda: sync_to_async(lambda: iter(WORDS), cancel), cancel))
    assert out == WORDS and not cancel.is_set()
