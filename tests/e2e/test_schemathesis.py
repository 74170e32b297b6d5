"""Property-based API conformance: Schemathesis over the app's own OpenAPI schema.

Every operation of ``/openapi.json`` gets generated requests (examples, coverage and fuzzing
phases; valid and invalid data) against the app built from the ``tiny`` profile with API keys
configured, served by a real uvicorn on a loopback port. Every response must be no 5xx, carry a
documented status code and content type, and match its documented body schema. Then:

* the same without a key: every ``/v1`` operation answers 401 in the error envelope;
* a stateful run (Schemathesis follows the inferred links: create a stream, read it, post to it,
  delete it), with the key;
* the frame and upload endpoints, whose raw bodies the schema cannot describe, with small real
  bodies (a JPEG, garbage, a wrong Content-Type, a multipart header without a boundary), and the
  job an upload creates.

No ``xfail`` on the generated tests: with Schemathesis 4.32 an XPASS(strict) of a parametrized
Schemathesis item crashes pytest (INTERNALERROR in its ``pytest_runtest_makereport``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", minversion="4.0")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import auth, cut_frames, jpeg, tiny_settings  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from eventvstream.api import create_app  # noqa: E402

pytestmark = pytest.mark.e2e

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STREAM = "st-stream"  # created before the run, so generated and explicit requests reach 2xx paths
HYPOTHESIS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Built at import (cheap: the engine loads its models only when the lifespan starts), because
# Schemathesis parametrizes at collection time. Served by a real uvicorn in a thread rather than
# through Schemathesis's in-process ASGI transport: its pytest plugin ends every ASGI lifespan it
# started after each test item, and this app's lifespan can run only once. (Its lazy
# ``from_fixture`` loader cannot be used either: it sets ``Function._nodeid``, which pytest >= 9.2
# no longer has.)
DATA_DIR = Path(tempfile.gettempdir()) / f"evs-schemathesis-{os.getpid()}-{uuid.uuid4().hex[:8]}"
# One key makes every request here: give it the whole session limit (the per-key quota has its
# own tests in test_security_tenants.py), or the generated frame posts would use it up.
APP = create_app(tiny_settings(DATA_DIR, max_sessions_per_key=16), host="127.0.0.1")
schema = schemathesis.openapi.from_dict(APP.openapi())


def _request(
    url: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    extra = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=(headers or {}) | extra, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """APP under uvicorn on a free loopback port, ready (models warm), with STREAM created."""
    import uvicorn

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(APP, lifespan="on", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while _request(f"{url}/readyz")[0] != 200:
            assert thread.is_alive(), "uvicorn stopped before the app was ready"
            assert time.monotonic() < deadline, "the app never became ready"
            time.sleep(0.1)
        status, served = _request(f"{url}/openapi.json")
        assert status == 200 and json.loads(served) == APP.openapi()  # the schema under test
        status, body = _request(
            f"{url}/v1/streams", method="POST", body={"id": STREAM}, headers=auth()
        )
        assert status == 201, body
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        shutil.rmtree(DATA_DIR, ignore_errors=True)


@schema.parametrize()
@HYPOTHESIS
def test_api_conforms_with_key(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers=auth(), checks=CHECKS)


@schema.parametrize()
@HYPOTHESIS
def test_api_without_key_is_401_enveloped(case: Any, base_url: str) -> None:
    response = case.call_and_validate(base_url=base_url, checks=CHECKS)
    # The coverage phase also sends methods the path does not have: 405 is right for those.
    if case.path.startswith("/v1/") and case.method.upper() == case.operation.method.upper():
        assert response.status_code == 401, (case.method, case.path, response.text)
        error = response.json()["error"]
        assert error["code"] == "unauthorized", error
        assert isinstance(error["message"], str) and error["message"], error


def test_stateful_with_key(base_url: str) -> None:
    """Sequences along the inferred links (create → get/list/events/frames/delete)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "headers": auth()}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=auth())

    Workflow.run(
        settings=settings(HYPOTHESIS, max_examples=25, stateful_step_count=6, print_blob=False)
    )


RAW_STREAM = "raw-stream"  # its own: the generated and stateful tests may delete STREAM
TINY_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)
RAW_CASES = {
    # id: (route, stream, headers, body)
    "frame-jpeg": ("frames", RAW_STREAM, {"Content-Type": "image/jpeg"}, "jpeg"),
    "frame-garbage": ("frames", RAW_STREAM, {"Content-Type": "image/jpeg"}, b"not a jpeg"),
    "frame-text": ("frames", RAW_STREAM, {"Content-Type": "text/plain"}, b"hello"),
    "frame-no-stream": ("frames", "no-such-stream", {"Content-Type": "image/png"}, "jpeg"),
    "upload-video": ("uploads", RAW_STREAM, {"Content-Type": "video/mp4"}, TINY_MP4),
    "upload-text": ("uploads", RAW_STREAM, {"Content-Type": "text/plain"}, b"hello"),
    "upload-multipart-no-boundary": (
        "uploads",
        RAW_STREAM,
        {"Content-Type": "multipart/form-data"},
        b"--x\r\n\r\n",
    ),
    "upload-no-stream": ("uploads", "no-such-stream", {"Content-Type": "video/mp4"}, TINY_MP4),
}


@pytest.mark.parametrize("case_id", list(RAW_CASES))
def test_raw_body_endpoints_conform(base_url: str, case_id: str) -> None:
    """Small real bodies for the endpoints whose body the schema does not describe; an accepted
    upload's job is then polled until it ends, each answer checked against the Job schema."""
    route, stream, extra, body = RAW_CASES[case_id]
    status, created = _request(
        f"{base_url}/v1/streams", method="POST", body={"id": RAW_STREAM}, headers=auth()
    )
    assert status in (200, 201), created
    data = jpeg(cut_frames()[0]) if body == "jpeg" else body
    operation = schema[f"/v1/streams/{{stream_id}}/{route}"]["POST"]
    # a distinct time per case: a frame in an already-taken sampling tick is skipped undecoded
    query = {"t": 10.0 * (1 + list(RAW_CASES).index(case_id))} if route == "frames" else None
    case = operation.Case(path_parameters={"stream_id": stream}, query=query)
    headers = auth() | extra
    response = case.call(base_url=base_url, headers=headers, data=data)
    case.validate_response(response, checks=CHECKS, headers=headers)
    if stream == RAW_STREAM and case_id in ("frame-jpeg", "upload-video"):
        assert response.status_code == 202, response.text
    if case_id != "upload-video":
        return
    job = schema["/v1/jobs/{job_id}"]["GET"].Case(
        path_parameters={"job_id": response.json()["job_id"]}
    )
    deadline = time.monotonic() + 30
    while True:
        polled = job.call(base_url=base_url, headers=auth())
        job.validate_response(polled, checks=CHECKS, headers=auth())
        if polled.json()["state"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert polled.json()["state"] in ("done", "failed"), polled.json()
