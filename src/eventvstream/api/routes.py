"""REST: streams, frames, uploads, jobs, events and questions (all under ``/v1``).

Every route authenticates first (:func:`caller`), then spends one token of the caller's rate
bucket. Streams are per key: another key's stream answers 404 exactly like a missing one, so a
caller learns nothing about streams it does not own. Blocking work (bank reads, searches) runs in
worker threads; the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from eventvstream.api.auth import Principal, bearer
from eventvstream.api.errors import ApiError, clip
from eventvstream.api.limits import read_limited, spool_to_file
from eventvstream.api.quotas import Quotas, UploadTicket
from eventvstream.api.schemas import (
    ERROR_RESPONSES,
    MAX_TIME_S,
    STREAM_ID_PATTERN,
    STREAM_MAX_CHARS,
    AnswerOut,
    EventList,
    FrameAccepted,
    Job,
    JobCreated,
    QueryIn,
    Stream,
    StreamCreate,
    StreamList,
    errors,
)
from eventvstream.errors import EvsError
from eventvstream.language.qa import Answer
from eventvstream.memory.retrieval import Scope
from eventvstream.serving.facade import EngineFacade
from eventvstream.serving.jobs import UploadJob
from eventvstream.serving.pull import PullSpec

MAX_FILENAME_CHARS = 255
IMAGE_TYPES = ("image/jpeg", "image/png", "application/octet-stream")
StreamId = Annotated[
    str, PathParam(pattern=STREAM_ID_PATTERN, max_length=STREAM_MAX_CHARS, description="Stream id.")
]


async def caller(request: Request) -> Principal:
    """The authenticated caller. :class:`~eventvstream.api.app.V1Guard` has already checked
    the key (401) and the rate (429) before the body was read; this only hands it over."""
    principal = getattr(request.state, "principal", None)
    if principal is None:  # the app was mounted without its guard
        principal = request.app.state.auth.check(bearer(request.headers.get("authorization")))
    return principal


Caller = Annotated[Principal, Depends(caller)]
router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def _engine(request: Request, *, writing: bool) -> EngineFacade:
    engine: EngineFacade = request.app.state.engine
    if writing:
        engine.check_accepting()
    else:
        engine.check_ready()
    return engine


def _not_found(stream: str) -> EvsError:
    return EvsError(f"no stream {stream!r}", code="not_found")


def _describe(engine: EngineFacade, owner: str, stream: str) -> dict[str, Any] | None:
    if not engine.stream_exists(owner, stream):
        return None
    found = engine.describe_streams(owner, stream)
    if found:
        return found[0]
    return {
        "id": stream,
        "created": None,
        "events": 0,
        "live": engine.is_live(owner, stream),
        "source": engine.pull_status(owner, stream),
    }


# -- streams -------------------------------------------------------------------------------------
@router.post(
    "/streams",
    status_code=201,
    response_model=Stream,
    tags=["streams"],
    responses={200: {"model": Stream, "description": "The caller already had this stream"}},
)
async def create_stream(
    request: Request, who: Caller, body: StreamCreate | None = None
) -> JSONResponse:
    """Create a stream (201), or return the caller's existing stream of that id (200). With a
    ``source``, the server pulls that URL into the stream's live session (see docs/cameras.md);
    its state is in ``source``."""
    engine = _engine(request, writing=True)
    stream = (body.id if body else None) or uuid.uuid4().hex[:12]
    if body is not None and body.source is not None:
        # the pull first, so a refused one (quota, bad source) leaves no new stream behind
        created = not await asyncio.to_thread(engine.stream_exists, who.owner, stream)
        spec = PullSpec(body.source.url, body.source.fps, body.source.transport)
        await asyncio.to_thread(engine.start_pull, who.owner, stream, spec)
    else:
        created = await asyncio.to_thread(engine.ensure_stream, who.owner, stream)
    info = await asyncio.to_thread(_describe, engine, who.owner, stream)
    return JSONResponse(info, status_code=201 if created else 200)


@router.get("/streams", response_model=StreamList, tags=["streams"])
async def list_streams(request: Request, who: Caller) -> dict[str, Any]:
    """The caller's streams (never another key's)."""
    engine = _engine(request, writing=False)
    streams = await asyncio.to_thread(engine.describe_streams, who.owner)
    return {"streams": streams}


@router.get("/streams/{stream_id}", response_model=Stream, tags=["streams"])
async def get_stream(request: Request, who: Caller, stream_id: StreamId) -> dict[str, Any]:
    engine = _engine(request, writing=False)
    info = await asyncio.to_thread(_describe, engine, who.owner, stream_id)
    if info is None:
        raise _not_found(stream_id)
    return info


@router.delete("/streams/{stream_id}", status_code=204, tags=["streams"], responses=errors(409))
async def delete_stream(request: Request, who: Caller, stream_id: StreamId) -> Response:
    """Forget the stream and all its events (409 while a session is live on it)."""
    engine = _engine(request, writing=False)
    if not await asyncio.to_thread(engine.stream_exists, who.owner, stream_id):
        raise _not_found(stream_id)
    await asyncio.to_thread(engine.delete_stream, who.owner, stream_id)
    return Response(status_code=204)


# -- frames and uploads ----------------------------------------------------------------------------
@router.post(
    "/streams/{stream_id}/frames",
    status_code=202,
    response_model=FrameAccepted,
    tags=["ingest"],
    responses=errors(409, 413, 415),
)
async def post_frame(
    request: Request,
    who: Caller,
    stream_id: StreamId,
    t: Annotated[
        float,
        Query(ge=-MAX_TIME_S, le=MAX_TIME_S, description="Client timestamp of the frame, seconds."),
    ],
) -> dict[str, Any]:
    """One JPEG/PNG frame (the body) into the stream's live session."""
    received_at = time.monotonic()
    engine = _engine(request, writing=True)
    content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0]
    if content_type.strip().lower() not in IMAGE_TYPES:
        raise EvsError(
            f"Content-Type {content_type} is not image/jpeg or image/png",
            code="unsupported_media_type",
        )
    limit = request.app.state.settings.server.max_frame_bytes
    data = await read_limited(request, limit, what="frame", code="frame_too_large")
    if not await asyncio.to_thread(engine.stream_exists, who.owner, stream_id):
        raise _not_found(stream_id)
    session = await asyncio.to_thread(engine.open_session, who.owner, stream_id, websocket=False)
    queued, _ = await engine.ingest_frame(session, t, data, received_at, decode_now=True)
    return {"queued": queued, "frames_dropped": session.dropped}


@router.post(
    "/streams/{stream_id}/uploads",
    status_code=202,
    response_model=JobCreated,
    tags=["ingest"],
    responses=errors(413, 415),
)
async def upload_video(request: Request, who: Caller, stream_id: StreamId) -> dict[str, Any]:
    """A video file (raw body with Content-Type video/*, or multipart field ``file``), ingested
    as a background job; poll ``GET /v1/jobs/{job_id}``."""
    engine = _engine(request, writing=True)
    if not await asyncio.to_thread(engine.stream_exists, who.owner, stream_id):
        raise _not_found(stream_id)
    state = request.app.state
    limit = state.settings.server.max_upload_bytes
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    size = int(declared) if declared and declared.isdigit() else None
    if size is not None and size > limit:
        raise ApiError(f"upload is larger than the {limit} byte limit", code="upload_too_large")
    multipart = content_type == "multipart/form-data"
    if not (
        multipart or content_type.startswith("video/") or content_type == "application/octet-stream"
    ):
        raise EvsError(
            "send the video as Content-Type video/* or multipart/form-data",
            code="unsupported_media_type",
        )
    quotas = state.quotas
    ticket = quotas.start_upload(who.owner, size)
    spool = Spool(quotas, ticket, state.spool_dir, limit)
    try:
        if multipart:
            path, digest, filename = await _multipart_upload(request, spool)
        else:
            path, digest = await spool.write(request.stream())
            filename = request.headers.get("x-filename")
        if filename is not None:  # a label only (errors, the source list): bounded, one line
            filename = clip(" ".join(filename.split()), MAX_FILENAME_CHARS) or None
        if path.stat().st_size == 0:  # refused here: the job would only fail with "empty file"
            path.unlink(missing_ok=True)
            raise EvsError("the upload is empty: send the video's bytes", code="bad_request")
        try:
            job = await asyncio.to_thread(
                engine.submit_upload, UploadJob(who.owner, stream_id, path, digest, filename)
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    except BaseException:
        quotas.release(ticket)
        raise
    ticket.job = job  # the claim now lasts until the job ends
    return {"job_id": job.id}


class Spool:
    """An upload's bytes to a temp file, counted against its quota ticket as they arrive."""

    def __init__(self, quotas: Quotas, ticket: UploadTicket, directory: Path, limit: int) -> None:
        self.quotas, self.ticket, self.directory, self.limit = quotas, ticket, directory, limit

    async def write(self, chunks: AsyncIterator[bytes]) -> tuple[Path, str]:
        ticket, quotas = self.ticket, self.quotas

        async def counted() -> AsyncIterator[bytes]:
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                quotas.grew(ticket, size)
                yield chunk

        def over_limit() -> EvsError:
            if ticket.room < self.limit:
                return quotas.bytes_refusal()
            return ApiError(
                f"upload is larger than the {self.limit} byte limit", code="upload_too_large"
            )

        room = min(self.limit, ticket.room)
        path, digest, _ = await spool_to_file(
            counted(), room, what="upload", directory=self.directory, over_limit=over_limit
        )
        return path, digest


async def _multipart_upload(request: Request, spool: Spool) -> tuple[Path, str, str | None]:
    """Spool the whole multipart body (size-limited), then pull out its one file part."""
    raw, _ = await spool.write(request.stream())
    try:

        async def chunks() -> AsyncIterator[bytes]:
            with raw.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        parser = MultiPartParser(request.headers, chunks(), max_files=1, max_fields=16)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise EvsError(f"bad multipart body: {clip(exc.message)}", code="bad_request") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise EvsError("the multipart body has no file part", code="bad_request")

        async def file_chunks() -> AsyncIterator[bytes]:
            while chunk := await upload.read(1 << 20):
                yield chunk

        path, digest, _ = await spool_to_file(
            file_chunks(), spool.limit, what="upload", directory=spool.directory
        )
        await form.close()
        return path, digest, upload.filename
    finally:
        raw.unlink(missing_ok=True)


@router.get("/jobs/{job_id}", response_model=Job, tags=["ingest"])
async def get_job(request: Request, who: Caller, job_id: str) -> dict[str, Any]:
    engine = _engine(request, writing=False)
    job = await asyncio.to_thread(engine.get_job, who.owner, job_id)
    if job is None:
        raise EvsError(f"no job {clip(job_id)!r}", code="not_found")
    return job


# -- reading memory ------------------------------------------------------------------------------
@router.get("/streams/{stream_id}/events", response_model=EventList, tags=["memory"])
async def list_events(
    request: Request,
    who: Caller,
    stream_id: StreamId,
    t0: Annotated[
        float | None, Query(ge=-MAX_TIME_S, le=MAX_TIME_S, description="Events ending after (s).")
    ] = None,
    t1: Annotated[
        float | None,
        Query(ge=-MAX_TIME_S, le=MAX_TIME_S, description="Events starting before (s)."),
    ] = None,
    q: Annotated[str | None, Query(max_length=2000, description="Text search.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    engine = _engine(request, writing=False)
    if not await asyncio.to_thread(engine.stream_exists, who.owner, stream_id):
        raise _not_found(stream_id)
    events = await asyncio.to_thread(
        engine.find_events, who.owner, stream_id, t0=t0, t1=t1, q=q, limit=limit
    )
    return {"events": events}


@router.post(
    "/query",
    response_model=AnswerOut,
    tags=["memory"],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def query(request: Request, who: Caller, body: QueryIn) -> Any:
    """Answer from memory with cited events. ``stream_response`` (or ``Accept:
    text/event-stream``) streams ``event: delta`` lines, then one ``event: done``."""
    engine = _engine(request, writing=True)
    if body.stream is not None and not await asyncio.to_thread(
        engine.stream_exists, who.owner, body.stream
    ):
        raise _not_found(body.stream)
    scope = Scope(body.stream, who.owner, body.t0, body.t1)
    release = request.app.state.quotas.start_question(who.owner)
    streaming = False
    try:
        answers = engine.answer(body.text, scope)
        wants_sse = body.stream_response or "text/event-stream" in request.headers.get("accept", "")
        if not wants_sse:
            async for part in answers:
                if isinstance(part, Answer):
                    return part.to_dict()
            raise EvsError("no answer", code="internal_error")
        first = await anext(answers)  # errors before the first byte still get a proper status
        streaming = True
    finally:
        if not streaming:
            release()

    async def events() -> AsyncIterator[str]:
        item = first
        try:
            while True:
                if isinstance(item, Answer):
                    yield f"event: done\ndata: {json.dumps(item.to_dict())}\n\n"
                else:
                    yield f"event: delta\ndata: {json.dumps({'delta': item})}\n\n"
                item = await anext(answers)
        except StopAsyncIteration:
            return
        except EvsError as exc:
            yield f"event: error\ndata: {json.dumps(exc.to_dict())}\n\n"
        finally:
            release()

    body_iter = events()
    weakref.finalize(body_iter, release)  # a client gone before the first byte: still released
    return StreamingResponse(body_iter, media_type="text/event-stream")
