"""Token streaming out of a transformers ``generate`` call, shared by the LM and VLM backends
(:func:`stream_generate`, and :class:`HFDecoderBase` with the protocol methods both share).

``generate`` is blocking and has no native iterator, so it runs in a helper thread with a
``TextIteratorStreamer``; the caller iterates over decoded text deltas. A stopping criterion
checks the request's cancel flag before every new token, so a client that goes away frees the
model within one token instead of after the whole budget.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from eventvstream.language.base import GenerationRequest
from eventvstream.language.streaming import sync_to_async

NO_REPEAT_NGRAM = 4


class HFDecoderBase:
    """``stream``/``astream``/``close`` for a transformers model; subclasses build the inputs
    (``prompt_inputs``) and set ``model``, ``tokenizer`` and ``info``."""

    model: Any
    tokenizer: Any

    def __init__(self) -> None:
        # One generate at a time per model: concurrent calls would only compete for the same
        # cores or device and interleave their KV caches' memory.
        self._lock = threading.Lock()

    def prompt_inputs(self, request: GenerationRequest) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        if request.cancel.is_set():  # not even the preprocessing
            return
        inputs = self.prompt_inputs(request)
        with self._lock:
            yield from stream_generate(self.model, self.tokenizer, inputs, request)

    def astream(self, request: GenerationRequest) -> AsyncIterator[str]:
        return sync_to_async(lambda: self.stream(request), request.cancel)

    def close(self) -> None:
        self.model = None


def stream_generate(
    model: Any, tokenizer: Any, inputs: dict[str, Any], request: GenerationRequest
) -> Iterator[str]:
    import torch
    from transformers import (
        LogitsProcessor,
        LogitsProcessorList,
        StoppingCriteria,
        StoppingCriteriaList,
        TextIteratorStreamer,
    )

    if request.cancel.is_set():
        return

    class _Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = request.cancel.is_set()
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool)

    class _NoRepeatInAnswer(LogitsProcessor):
        """Greedy decoding with small models loops ("on a menu on a menu on a menu ..."): ban a
        token that would repeat a 4-gram *of the answer*. (transformers' no_repeat_ngram_size
        also counts the prompt, so it forbade copying an object's name from the labels.)"""

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            n = NO_REPEAT_NGRAM
            for row in range(input_ids.shape[0]):
                answer = input_ids[row, prompt_length:].tolist()
                if len(answer) < n:
                    continue
                tail = answer[-(n - 1) :]
                for i in range(len(answer) - n + 1):
                    if answer[i : i + n - 1] == tail:
                        scores[row, answer[i + n - 1]] = -float("inf")
            return scores

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    sampling = request.temperature > 0
    kwargs: dict[str, Any] = {
        **inputs,
        "max_new_tokens": request.max_new_tokens,
        "do_sample": sampling,
        "streamer": streamer,
        "stopping_criteria": StoppingCriteriaList([_Cancelled()]),
        "logits_processor": LogitsProcessorList([_NoRepeatInAnswer()]),
        "pad_token_id": tokenizer.pad_token_id
        if tokenizer.pad_token_id is not None
        else tokenizer.eos_token_id,
    }
    if sampling:
        kwargs["temperature"] = request.temperature
    else:  # greedy: silence the model's own sampling defaults
        kwargs.update(temperature=None, top_p=None, top_k=None)
    prompt_length = int(inputs["input_ids"].shape[1])
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                model.generate(**kwargs)
        except BaseException as exc:
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, name="evs-generate", daemon=True)
    worker.start()
    finished = False
    try:
        for delta in streamer:
            if request.cancel.is_set():  # tokens already queued by the model are not wanted
                break
            if delta:
                yield delta
        finished = True
    finally:
        if not finished:  # the consumer stopped early: stop the model, then wait for it
            request.cancel.set()
        worker.join()
    if failure:
        raise failure[0]
