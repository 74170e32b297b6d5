"""The OpenAI-compatible decoder against a real server and against a scripted stand-in.

The real server is llama-cpp-python's ``python -m llama_cpp.server`` serving the packaged
SmolLM2-135M GGUF on CPU. llama-cpp-python has no wheel for every platform and compiles for
minutes, so it is optional: point ``LLAMA_SERVER_PYTHON`` at an interpreter that has it, or
install it into the test environment; otherwise those tests skip and say how.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from eventvstream.config import LanguageSettings
from eventvstream.errors import DecoderError, DecoderUnavailable, ModelLoadError
from eventvstream.language.base import ChatMessage, GenerationRequest
from eventvstream.language.openai_compat import OpenAIDecoder

SKIP_REASON = (
    "llama-cpp-python[server] not installed: set LLAMA_SERVER_PYTHON or "
    "pip install 'llama-cpp-python[server]'; last passed: see docs/benchmarks.md"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def within(seconds: float, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread; fail (instead of hanging the suite) if it takes too long."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"no outcome within {seconds} s (hang)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def ask(text: str, max_new_tokens: int = 24, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(
        [ChatMessage("user", text, **kwargs)], max_new_tokens=max_new_tokens, temperature=0.0
    )


def settings(base_url: str | None, **overrides: Any) -> LanguageSettings:
    return LanguageSettings(backend="openai", base_url=base_url, model="smollm2", **overrides)


# --------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a llama.cpp server on the packaged GGUF."""
    python = os.environ.get("LLAMA_SERVER_PYTHON")
    if not python:
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip(SKIP_REASON)
        python = sys.executable
    from eventvstream.language.loading import packaged_gguf

    try:
        gguf = packaged_gguf()
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--n_ctx", "2048", "--n_threads", "2"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({process.returncode}):\n{_tail(log_path)}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after 120 s:\n{_tail(log_path)}")
            time.sleep(0.25)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


@pytest.fixture
def decoder(llama_server: str) -> OpenAIDecoder:
    return OpenAIDecoder(settings(llama_server, retries=0))


@pytest.mark.slow
def test_stream_yields_several_deltas(decoder: OpenAIDecoder) -> None:
    deltas = within(60, lambda: list(decoder.stream(ask("Name three colours."))))
    assert len(deltas) >= 2
    assert "".join(deltas).strip()


@pytest.mark.slow
def test_astream_yields_the_same_kind_of_deltas(decoder: OpenAIDecoder) -> None:
    async def collect() -> list[str]:
        return [delta async for delta in decoder.astream(ask("Name three colours."))]

    deltas = within(60, lambda: asyncio.run(collect()))
    assert len(deltas) >= 2
    assert "".join(deltas).strip()


@pytest.mark.slow
def test_max_new_tokens_bounds_the_output(decoder: OpenAIDecoder) -> None:
    request = ask("Write a long story about a dragon.", max_new_tokens=5)
    deltas = within(60, lambda: list(decoder.stream(request)))
    assert 1 <= len(deltas) <= 5 + 1


@pytest.mark.slow
def test_cancel_stops_early(decoder: OpenAIDecoder) -> None:
    request = ask("Write a long story about a dragon.", max_new_tokens=300)

    def consume() -> list[str]:
        deltas = []
        for delta in decoder.stream(request):
            deltas.append(delta)
            if len(deltas) == 3:
                request.cancel.set()
        return deltas

    deltas = within(60, consume)
    # Deltas already queued by the I/O thread may still arrive; far fewer than the budget.
    assert 3 <= len(deltas) <= 10


@pytest.mark.slow
def test_cancel_stops_astream_early(decoder: OpenAIDecoder) -> None:
    request = ask("Write a long story about a dragon.", max_new_tokens=300)

    async def consume() -> list[str]:
        deltas = []
        async for delta in decoder.astream(request):
            deltas.append(delta)
            if len(deltas) == 3:
                request.cancel.set()
        return deltas

    assert len(within(60, lambda: asyncio.run(consume()))) == 3


@pytest.mark.slow
def test_image_to_a_text_only_model_has_a_clear_outcome(decoder: OpenAIDecoder) -> None:
    """SmolLM2 has no vision tower: a server may answer from the text or refuse; never hang.

    Observed with llama-cpp-python 0.3.36: the GGUF's chat template does ``'...' +
    message['content']``, which fails on a list of content parts. Streaming, the server has
    already answered 200, so it just closes the event stream empty; the decoder turns that into a
    DecoderError rather than an empty caption.
    """
    image = np.zeros((720, 1280, 3), np.uint8)
    request = ask("What is in the picture?", images=[image])
    try:
        text = within(60, lambda: "".join(decoder.stream(request)))
    except DecoderError as exc:
        assert str(exc)
    else:
        assert text.strip()


@pytest.mark.slow
def test_check_passes_against_a_live_server(decoder: OpenAIDecoder) -> None:
    asyncio.run(decoder.check())


KIND_SCHEMA = {
    "type": "object",
    "properties": {"kind": {"type": "string", "enum": ["last", "first", "count"]}},
    "required": ["kind"],
}


@pytest.mark.slow
def test_a_json_schema_constrains_the_real_servers_output(decoder: OpenAIDecoder) -> None:
    """llama-cpp-python's server refuses OpenAI's ``json_schema`` form (HTTP 500 naming
    ``json_object``); the decoder switches to ``json_object`` + schema and the output obeys."""
    request = ask("When did we last see a dog? Give the kind of question as JSON.", 48)
    request.json_schema = KIND_SCHEMA
    parsed = json.loads(within(120, lambda: "".join(decoder.stream(request))))
    assert parsed["kind"] in ("last", "first", "count")


# --------------------------------------------------------------------------- no server needed


def test_missing_base_url_is_a_model_load_error() -> None:
    with pytest.raises(ModelLoadError, match=r"language\.base_url"):
        OpenAIDecoder(settings(None))


def test_unreachable_endpoint_is_unavailable_within_seconds() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    decoder = OpenAIDecoder(settings(url, retries=2, connect_timeout_s=1.0))
    start = time.monotonic()
    with pytest.raises(DecoderUnavailable) as caught:
        within(15, lambda: list(decoder.stream(ask("hello"))))
    assert time.monotonic() - start < 5  # backoff 0.5 s + 1 s
    assert f"{url}/chat/completions" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)
    assert caught.value.code == "decoder_unavailable"
    with pytest.raises(DecoderUnavailable, match=url):
        asyncio.run(decoder.check())


# A scripted peer. It stands in for a misbehaving server because a real server cannot be made to
# return a 503, a 429 with Retry-After or a stream cut mid-answer on cue.


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Content pieces sent as SSE chunks (status 200 only), then ``[DONE]`` unless ``cut``.
    deltas: list[str] | None = None
    cut: bool = False


@dataclass
class StandIn:
    url: str
    script: list[Reply] = field(default_factory=list)
    #: (monotonic time, path, headers, parsed JSON body) of every request received.
    seen: list[tuple[float, str, dict[str, str], Any]] = field(default_factory=list)


def sse(deltas: list[str]) -> list[bytes]:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": d}}]} for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """A stdlib HTTP server that answers each request with the next scripted :class:`Reply`."""
    state = StandIn(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.seen()
            self.send_body(200, {}, json.dumps({"object": "list", "data": []}).encode())

        def do_POST(self) -> None:
            self.seen()
            reply = state.script.pop(0)
            if reply.deltas is None:
                self.send_body(reply.status, reply.headers, reply.body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = sse(reply.deltas)
            events = events[:3] if reply.cut else [*events, b"data: [DONE]\n\n"]
            for event in events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            if not reply.cut:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True  # a cut stream: the chunked body never ends

        def seen(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            state.seen.append((time.monotonic(), self.path, dict(self.headers), body))

        def send_body(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_503_then_success_is_retried(standin: StandIn) -> None:
    standin.script = [Reply(503, {"Retry-After": "0"}, b"busy"), Reply(deltas=["Hel", "lo"])]
    decoder = OpenAIDecoder(settings(standin.url, retries=2))
    assert within(10, lambda: list(decoder.stream(ask("hi")))) == ["Hel", "lo"]
    assert len(standin.seen) == 2
    assert standin.seen[0][1] == "/v1/chat/completions"


def test_retry_after_is_honoured(standin: StandIn) -> None:
    standin.script = [Reply(429, {"Retry-After": "1.5"}, b"{}"), Reply(deltas=["ok"])]
    decoder = OpenAIDecoder(settings(standin.url, retries=1))
    assert within(10, lambda: list(decoder.stream(ask("hi")))) == ["ok"]
    gap = standin.seen[1][0] - standin.seen[0][0]
    assert 1.4 <= gap < 4  # the header's 1.5 s, not the 0.5 s first backoff


def test_exhausted_retries_are_unavailable(standin: StandIn) -> None:
    overloaded = Reply(503, {"Retry-After": "0"}, b'{"error": {"message": "overloaded"}}')
    standin.script = [overloaded, overloaded]
    decoder = OpenAIDecoder(settings(standin.url, retries=1))
    with pytest.raises(DecoderUnavailable, match=r"HTTP 503 .*overloaded \(after 2 attempts\)"):
        within(10, lambda: list(decoder.stream(ask("hi"))))


def test_a_200_stream_that_ends_unfinished_is_an_error(standin: StandIn) -> None:
    """What llama-cpp-python does when generation fails after its 200 (see the image test)."""
    standin.script = [Reply(200, {"Content-Type": "text/event-stream"}, b": ping\r\n\r\n")]
    decoder = OpenAIDecoder(settings(standin.url, retries=2))
    with pytest.raises(DecoderError, match="ended before the answer was finished"):
        within(10, lambda: list(decoder.stream(ask("hi"))))
    assert len(standin.seen) == 1


def test_client_error_is_not_retried_and_quotes_the_server(standin: StandIn) -> None:
    body = json.dumps({"error": {"message": "max_tokens is too large: " + "x" * 1000}})
    standin.script = [Reply(400, {}, body.encode())]
    decoder = OpenAIDecoder(settings(standin.url, retries=3))
    with pytest.raises(DecoderError) as caught:
        within(10, lambda: list(decoder.stream(ask("hi"))))
    assert not isinstance(caught.value, DecoderUnavailable)
    assert caught.value.code == "decoder_error"
    assert "HTTP 400" in str(caught.value) and "max_tokens is too large" in str(caught.value)
    assert len(str(caught.value)) < 450  # the server's text is truncated to 300 characters
    assert len(standin.seen) == 1


def test_a_stream_cut_after_the_first_delta_is_not_retried(standin: StandIn) -> None:
    """A retry would repeat text the caller already has: the error surfaces instead."""
    standin.script = [Reply(deltas=["one", "two", "three"], cut=True), Reply(deltas=["again"])]
    decoder = OpenAIDecoder(settings(standin.url, retries=2))
    received: list[str] = []

    def consume() -> None:
        for delta in decoder.stream(ask("hi")):
            received.append(delta)

    with pytest.raises(DecoderError, match="broke after 2 deltas"):
        within(10, consume)
    assert received == ["one", "two"]
    assert len(standin.seen) == 1


def test_request_body_images_and_api_key(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVS_TEST_KEY", "sk-secret")
    standin.script = [Reply(deltas=["a cat"])]
    decoder = OpenAIDecoder(settings(standin.url, api_key_env="EVS_TEST_KEY"))
    image = np.full((720, 1280, 3), 200, np.uint8)
    request = ask("What is this?", max_new_tokens=7, images=[image])
    assert within(10, lambda: "".join(decoder.stream(request))) == "a cat"
    _, _, headers, body = standin.seen[0]
    assert headers["Authorization"] == "Bearer sk-secret"
    assert body["model"] == "smollm2" and body["stream"] is True and body["max_tokens"] == 7
    text, picture = body["messages"][0]["content"]
    assert text == {"type": "text", "text": "What is this?"}
    url = picture["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (512, 288)
    asyncio.run(decoder.check())
    assert standin.seen[1][1] == "/v1/models"


def test_a_refused_json_schema_form_is_resent_as_json_object(standin: StandIn) -> None:
    refused = (
        b'{"detail": [{"loc": ["body", "response_format", "type"], '
        b"\"msg\": \"Input should be 'text' or 'json_object'\"}]}"
    )
    standin.script = [Reply(500, {}, refused), Reply(deltas=['{"kind"', ': "last"}'])]
    standin.script.append(Reply(deltas=['{"kind": "first"}']))
    decoder = OpenAIDecoder(settings(standin.url, retries=0))  # the switch is not a retry
    request = ask("when did we last see a dog?")
    request.json_schema = KIND_SCHEMA
    assert within(10, lambda: "".join(decoder.stream(request))) == '{"kind": "last"}'
    assert within(10, lambda: "".join(decoder.stream(request))) == '{"kind": "first"}'
    forms = [seen[3]["response_format"] for seen in standin.seen]
    assert forms[0]["type"] == "json_schema"
    assert forms[1] == forms[2] == {"type": "json_object", "schema": KIND_SCHEMA}  # remembered


def test_other_500s_are_not_taken_for_a_refused_schema(standin: StandIn) -> None:
    standin.script = [Reply(500, {}, b'{"error": "boom"}')]
    decoder = OpenAIDecoder(settings(standin.url, retries=0))
    request = ask("hi")
    request.json_schema = KIND_SCHEMA
    with pytest.raises(DecoderError, match="boom"):
        within(10, lambda: list(decoder.stream(request)))
    assert len(standin.seen) == 1
