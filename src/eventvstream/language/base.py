"""The decoder protocol: chat messages in, text deltas out, as they are generated.

Three backends implement it (a transformers causal LM, a transformers vision-language model, an
OpenAI-compatible HTTP endpoint). Callers never care which: the caption worker and the question
answerer build :class:`GenerationRequest` objects and iterate over deltas.

Why both ``stream`` (blocking iterator) and ``astream`` (async iterator): the CLI and the caption
worker thread want a plain loop; the server wants an async loop that a model call never blocks.
Each backend implements the one that is native to it and gets the other from
:mod:`eventvstream.language.streaming`, so there is one bridge, not one per backend.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Role = Literal["system", "user", "assistant"]


@dataclass
class ChatMessage:
    role: Role
    content: str
    #: RGB uint8 keyframes (H, W, 3) for vision-language backends; text-only backends ignore them.
    images: list[np.ndarray] = field(default_factory=list, repr=False)


@dataclass
class GenerationRequest:
    messages: list[ChatMessage]
    max_new_tokens: int = 40
    temperature: float = 0.0
    #: Constrain the output to JSON of this schema where the backend can (OpenAI-compatible
    #: servers: ``response_format``); others ignore it, so callers still validate.
    json_schema: dict[str, Any] | None = None
    #: Set it (from any thread) to stop generating early: a client went away, the server drains.
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def images(self) -> list[np.ndarray]:
        return [image for message in self.messages for image in message.images]


@dataclass(frozen=True)
class DecoderInfo:
    backend: str
    model: str
    device: str
    accepts_images: bool


@runtime_checkable
class Decoder(Protocol):
    info: DecoderInfo

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas, blocking the calling thread while the model runs."""
        ...

    def astream(self, request: GenerationRequest) -> AsyncIterator[str]:
        """The same deltas for an asyncio caller; the model never runs on the event loop."""
        ...

    def close(self) -> None: ...


def generate(decoder: Decoder, request: GenerationRequest) -> str:
    """The whole completion as one string."""
    return "".join(decoder.stream(request))
