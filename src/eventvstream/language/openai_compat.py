"""A decoder backed by any OpenAI-compatible chat endpoint (vLLM, SGLang, TGI, llama.cpp server).

Why an HTTP backend at all: a served model runs on its own GPU/host and many engine processes can
share it; the engine then needs no torch for the language side.

``language.base_url`` is used exactly as given, with ``/chat/completions`` (and ``/models`` for
:meth:`OpenAIDecoder.check`) appended, so it must already include the API prefix the server uses,
usually ``/v1`` (``http://localhost:8000/v1``). We do not guess: servers differ in where they
mount the API, and a guessed path turns a clear "404 at http://..." into a confusing one.

Retries happen only before the first text delta reached the caller. After that a retry would
repeat text the caller has already shown, so a broken stream is an error, never a silent restart.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import numpy as np
from PIL import Image

from eventvstream.config import LanguageSettings
from eventvstream.errors import DecoderError, DecoderUnavailable, ModelLoadError
from eventvstream.language.base import DecoderInfo, GenerationRequest
from eventvstream.language.streaming import async_to_sync

log = logging.getLogger(__name__)

#: Keyframes are downscaled to this long side: enough for a VLM, small enough for a request body.
IMAGE_MAX_SIDE = 512
JPEG_QUALITY = 85
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 4.0
_RETRY_AFTER_MAX_S = 10.0
_ERROR_TEXT_MAX = 300


def encode_image(image: np.ndarray) -> str:
    """An RGB uint8 frame as a ``data:image/jpeg;base64,...`` URL (long side <= 512 px)."""
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")
    picture.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))  # keeps the aspect ratio, never enlarges
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _error_text(body: bytes) -> str:
    """The server's own error message, from whichever envelope it uses, truncated."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        # OpenAI/llama.cpp: {"error": {"message"}}; TGI: {"error": "..."}; vLLM: {"message"};
        # FastAPI validation: {"detail": ...}.
        error = data.get("error")
        found = error.get("message") if isinstance(error, dict) else error
        found = found or data.get("message") or data.get("detail")
        if found:
            text = found if isinstance(found, str) else json.dumps(found)
    return text[:_ERROR_TEXT_MAX] or "(empty body)"


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds (the delta-seconds form; an HTTP date is rare enough to ignore)."""
    try:
        value = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(value, 0.0), _RETRY_AFTER_MAX_S)


def _backoff(attempt: int) -> float:
    """0.5 s, 1 s, 2 s, 4 s, 4 s, ... before retry number ``attempt`` (1-based)."""
    return min(_BACKOFF_FIRST_S * 2 ** (attempt - 1), _BACKOFF_MAX_S)


class OpenAIDecoder:
    """Streams chat completions over HTTP server-sent events.

    A new ``httpx.AsyncClient`` per request: :func:`async_to_sync` runs each blocking stream on a
    private event loop, and a client is bound to the loop it was first used on, so sharing one
    would break the sync path. Connection setup is cheap next to a generation.
    """

    def __init__(self, settings: LanguageSettings) -> None:
        if not settings.base_url:
            raise ModelLoadError(
                "language.backend=openai needs language.base_url, the API root of an "
                "OpenAI-compatible server, e.g. http://localhost:8000/v1"
            )
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        api_key = os.environ.get(settings.api_key_env)
        # The key lives only in this header dict; nothing here logs headers.
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.info = DecoderInfo(
            backend="openai", model=settings.model, device=self.base_url, accepts_images=True
        )
        #: How a JSON schema is sent: OpenAI's "json_schema" until a server refuses it.
        self._schema_form = "json_schema"

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        for message in request.messages:
            if not message.images:
                # Plain string content: text-only servers may reject the list form.
                messages.append({"role": message.role, "content": message.content})
                continue
            parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
            parts += [
                {"type": "image_url", "image_url": {"url": encode_image(image)}}
                for image in message.images
            ]
            messages.append({"role": message.role, "content": parts})
        payload: dict[str, Any] = {
            "model": self.settings.model,  # sent as given: many servers ignore it, some need it
            "messages": messages,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        if request.json_schema is not None and self._schema_form == "json_schema":
            # OpenAI's form: vLLM, SGLang and llama.cpp's C++ server honour it.
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema},
            }
        elif request.json_schema is not None:
            # llama-cpp-python's server (0.3.x) refuses "json_schema" and takes the schema
            # with "json_object" instead (it compiles it to a grammar).
            payload["response_format"] = {"type": "json_object", "schema": request.json_schema}
        return payload

    def _refuses_schema_form(self, request: GenerationRequest, status: int, body: bytes) -> bool:
        """Whether this server refused the ``json_schema`` response format (then switch this
        decoder to the ``json_object`` form for good, once, and say so in the log)."""
        if request.json_schema is None or self._schema_form != "json_schema" or status < 400:
            return False
        if b"response_format" not in body or b"json_object" not in body:
            return False
        self._schema_form = "json_object"
        log.info("%s refuses response_format json_schema; sending json_object + schema", self.url)
        return True

    async def astream(self, request: GenerationRequest) -> AsyncIterator[str]:
        """Text deltas as the server produces them; stops between deltas once cancel is set."""
        payload = self._payload(request)
        attempts = self.settings.retries + 1
        attempt = 0
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            while attempt < attempts:
                attempt += 1
                if request.cancel.is_set():
                    return
                delay: float | None = None
                yielded = 0
                try:
                    async with client.stream("POST", self.url, json=payload) as response:
                        if response.status_code != 200:
                            status, body = response.status_code, await response.aread()
                            if self._refuses_schema_form(request, status, body):
                                payload, attempt = self._payload(request), attempt - 1
                                continue  # the same attempt, in the form this server takes
                            reason = f"HTTP {status} from {self.url}: {_error_text(body)}"
                            if status not in _RETRY_STATUSES:
                                raise DecoderError(reason)
                            if attempt == attempts:
                                # Overloaded/gateway statuses mean "not available"; a 500 that
                                # persists is this request failing, not the endpoint being down.
                                error = (
                                    DecoderUnavailable
                                    if status in _UNAVAILABLE_STATUSES
                                    else DecoderError
                                )
                                raise error(f"{reason} (after {attempts} attempts)")
                            if status in _RETRY_AFTER_STATUSES:
                                delay = _retry_after(response.headers)
                            delay = _backoff(attempt) if delay is None else delay
                            log.info("decoder endpoint %s; retrying in %.1f s", reason, delay)
                        else:
                            async for delta in self._deltas(response):
                                yielded += 1
                                yield delta
                                if request.cancel.is_set():
                                    return
                            return
                except httpx.TransportError as exc:  # connect errors, timeouts, dropped streams
                    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    if yielded:
                        raise DecoderError(
                            f"the stream from {self.url} broke after {yielded} deltas: {reason}"
                        ) from exc
                    if attempt == attempts:
                        raise DecoderUnavailable(
                            f"cannot reach the decoder endpoint {self.url}: {reason} "
                            f"(after {attempts} attempts)"
                        ) from exc
                    delay = _backoff(attempt)
                    log.info("decoder endpoint %s: %s; retrying in %.1f s", self.url, reason, delay)
                await asyncio.sleep(delay or 0.0)

    async def _deltas(self, response: httpx.Response) -> AsyncIterator[str]:
        """Content pieces from an SSE body: ``data: {...}`` lines until ``data: [DONE]``.

        A body that ends with neither ``[DONE]`` nor a ``finish_reason`` is an error: that is how
        a server that fails after sending its 200 shows it (llama-cpp-python closes the stream
        empty when its chat template rejects image parts), and it must not pass for "".
        """
        finished = False
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" fields
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise DecoderError(f"unparseable event from {self.url}: {data[:100]!r}") from exc
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):  # vLLM and others report mid-stream failures in-band
                raise DecoderError(f"error from {self.url}: {_error_text(data.encode())}")
            choices = chunk.get("choices") or [{}]
            finished = finished or bool(choices[0].get("finish_reason"))
            content = (choices[0].get("delta") or {}).get("content")
            if content:  # role-only and final (finish_reason) chunks carry no text
                yield content
        if not finished:
            raise DecoderError(
                f"the stream from {self.url} ended before the answer was finished "
                "(no finish_reason, no [DONE]); the server failed mid-generation, see its log"
            )

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        return async_to_sync(lambda: self.astream(request), request.cancel)

    async def check(self) -> None:
        """Raise :class:`DecoderUnavailable` unless ``GET {base_url}/models`` answers 200."""
        url = f"{self.base_url}/models"
        try:
            async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
                response = await client.get(url)
        except httpx.TransportError as exc:
            raise DecoderUnavailable(f"cannot reach the decoder endpoint {url}: {exc}") from exc
        if response.status_code != 200:
            raise DecoderUnavailable(
                f"HTTP {response.status_code} from {url}: {_error_text(response.content)}"
            )

    def close(self) -> None:
        """Nothing to release: each request opens and closes its own client."""
