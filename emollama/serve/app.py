"""The FastAPI app: the versioned REST API, Server-Sent Events, and the web page at ``/``.

Every request that analyses something follows one path: take an admission slot (429 when the
server is full, before any byte of the body is read) → stream the upload into a private folder
(413/415 on the way in) → check the options and probe the media (422/413) → queue a job on the
worker pool → answer once (``/v1/analyze``) or as a stream of events (``/v1/analyze/stream``).
The private folder and the slot are released when the job can no longer touch them — after its
answer, on an error, or when a client that went away has its queued job dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from emollama import __version__
from emollama.errors import EmollamaError, PathOutsideRootError
from emollama.labels import DEFAULT_LABEL_SET, LABEL_SETS
from emollama.media.sniff import SNIFF_BYTES, sniff_media
from emollama.schema import SCHEMA_VERSION
from emollama.serve.config import ServeConfig
from emollama.serve.engine import EngineSpec
from emollama.serve.errors import ApiError, status_for
from emollama.serve.uploads import Upload, receive_upload
from emollama.serve.workers import Job, WorkerPool, new_error_id

__all__ = ["create_app"]

log = logging.getLogger("emollama.serve")
STATIC = Path(__file__).parent / "static"
_TERMINAL = ("result", "error")
_FORM_DOC = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "video, audio or image (sniffed)"},
            "subtitle": {"type": "string", "description": "transcript text (else speech recognition)"},
            "subtitle_file": {"type": "string", "format": "binary", "description": ".srt, .vtt or .txt"},
            "labels": {"type": "string", "description": f"label set: {', '.join(LABEL_SETS)}"},
            "fps": {"type": "number", "description": "frames sampled per second of video"},
            "tier": {"type": "string", "description": "a tier this server loaded (GET /v1/models)"},
            "path": {"type": "string", "description": "a server-side file instead of 'file' (only with "
                                                      "--allow-root)"},
        }}}}}}


def create_app(config: ServeConfig, pool: WorkerPool | None = None) -> FastAPI:
    """The app for ``config``; its worker pool starts with the app and stops with it."""
    pool = pool or WorkerPool(EngineSpec(config.engine_factory, config.engine_options()), workers=config.workers,
                              max_queue=config.max_queue, timeout_s=config.timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await pool.start()
        try:
            yield
        finally:
            await pool.stop()

    app = FastAPI(title="emollama", version=__version__, lifespan=lifespan,
                  description="Multimodal emotion recognition and reasoning: upload a clip, get the label, the "
                              "scores, the evidence and the reasoning.")
    app.state.pool = pool
    app.state.config = config
    _install_error_handlers(app)
    if config.api_key:
        _install_api_key(app, config.api_key)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/v1/health", summary="Ready only when a worker has loaded its models")
    async def health() -> JSONResponse:
        state = pool.health()
        return JSONResponse(state, status_code=200 if state["status"] == "ready" else 503)

    @app.get("/v1/models", summary="What each tier loaded, the label sets, the limits")
    async def models() -> dict[str, Any]:
        return {"tiers": pool.info.get("tiers", {}), "default_tier": config.tiers[0],
                "label_sets": list(LABEL_SETS), "default_label_set": DEFAULT_LABEL_SET,
                "emollama_version": __version__, "schema_version": SCHEMA_VERSION,
                "limits": {"max_upload_mb": config.max_upload_mb, "max_duration_s": config.max_duration_s,
                           "timeout_s": config.timeout_s, "max_queue": config.max_queue},
                "server_paths": config.allow_root is not None, "ready": pool.ready}

    @app.post("/v1/analyze", summary="Analyse one upload; answers the AnalysisResult JSON", openapi_extra=_FORM_DOC)
    async def analyze(request: Request) -> JSONResponse:
        upload, job = await _start(request, pool, config)
        try:
            while True:
                try:
                    kind, data = await asyncio.wait_for(job.events.get(), timeout=1.0)
                except TimeoutError:
                    if await request.is_disconnected():
                        return JSONResponse({"error": "client went away"}, status_code=499)
                    continue
                if kind == "result":
                    return JSONResponse(_answer(data, upload))
                if kind == "error":
                    raise ApiError(int(data["status"]), _client_message(data["error"], upload, config),
                                   error_id=data.get("error_id"))
        finally:
            pool.abandon(job)

    @app.post("/v1/analyze/stream", summary="Analyse one upload; answers Server-Sent Events",
              openapi_extra=_FORM_DOC, response_class=StreamingResponse)
    async def analyze_stream(request: Request) -> StreamingResponse:
        upload, job = await _start(request, pool, config)

        async def events() -> AsyncIterator[bytes]:
            try:
                while True:
                    try:
                        kind, data = await asyncio.wait_for(job.events.get(), timeout=15.0)
                    except TimeoutError:
                        yield b": still working\n\n"  # keeps proxies from closing an idle stream
                        continue
                    if kind == "result":
                        data = _answer(data, upload)
                    elif kind == "error":
                        data = {**data, "error": _client_message(data["error"], upload, config)}
                    yield f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
                    if kind in _TERMINAL:
                        return
            finally:
                pool.abandon(job)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


def _answer(result: dict[str, Any], upload: Upload) -> dict[str, Any]:
    return {**result, "upload": upload.describe()}


async def _start(request: Request, pool: WorkerPool, config: ServeConfig) -> tuple[Upload, Job]:
    """Admission, upload, checks, queue: the job, or an :class:`ApiError` with nothing left behind."""
    if not pool.ready:
        if pool.load_error:
            raise ApiError(503, f"the server could not load its models: {pool.load_error}")
        raise ApiError(503, "the server is still loading its models; try again in a few seconds",
                       headers={"Retry-After": "5"})
    if not pool.admit():
        raise ApiError(429, "the server is busy: every worker is analysing and the queue is full; try again later",
                       headers={"Retry-After": str(pool.retry_after_s())})
    folder = Path(tempfile.mkdtemp(prefix="emollama-serve-", dir=config.tmp_dir))

    def release() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        pool.leave()

    try:
        try:
            upload = await receive_upload(request.headers.get("content-type"), request.headers.get("content-length"),
                                          request.stream(), folder, config.max_upload_bytes)
        except ApiError as exc:  # refused mid-body: close the connection rather than read the rest
            exc.headers.setdefault("Connection", "close")
            raise
        payload = await _job_payload(upload, config)
    except BaseException:
        release()
        raise
    job = pool.submit(payload)
    job.on_release.append(release)
    if job.finished:  # answered at once (e.g. the pool is stopping): nothing will release it later
        job.release()
    return upload, job


async def _job_payload(upload: Upload, config: ServeConfig) -> dict[str, Any]:
    """The form's options checked (422), the media found and probed (413/415/422): a job for a worker."""
    from emollama.media.decode import MediaReader, check_fps
    from emollama.validate import check_inside_root, shown_path

    fields = upload.fields
    labels = fields.get("labels", "").strip() or DEFAULT_LABEL_SET
    if labels not in LABEL_SETS:
        raise ApiError(422, f"labels: unknown label set {labels[:40]!r}; choose from {', '.join(LABEL_SETS)}")
    tier = fields.get("tier", "").strip() or config.tiers[0]
    if tier not in config.tiers:
        raise ApiError(422, f"tier: {tier[:40]!r} is not served here; this server loaded {', '.join(config.tiers)}")
    fps_text = fields.get("fps", "").strip()
    try:
        fps = check_fps(float(fps_text)) if fps_text else None
    except ValueError:
        raise ApiError(422, f"fps: {fps_text[:40]!r} is not a number") from None
    except EmollamaError as exc:
        raise ApiError(422, f"fps: {str(exc).replace('--fps ', '')}") from None

    subtitle_text = fields.get("subtitle", "").strip()
    if subtitle_text and upload.subtitle_file is not None:
        raise ApiError(422, "send either subtitle (text) or subtitle_file, not both")
    subtitle = upload.subtitle_file
    if subtitle_text:  # text goes to a file of ours, so it can never be taken for a server-side path
        subtitle = upload.folder / "subtitle.txt"
        subtitle.write_text(subtitle_text, encoding="utf-8")

    server_path = fields.get("path", "").strip()
    if server_path:
        if config.allow_root is None:
            raise ApiError(403, "path: this server does not read server-side files (start it with --allow-root DIR)")
        if upload.media is not None:
            raise ApiError(422, "send either a file or a path, not both")
        try:
            media = await asyncio.to_thread(check_inside_root, config.allow_root, server_path,
                                            max_bytes=config.max_upload_bytes)
        except PathOutsideRootError as exc:
            raise ApiError(403, str(exc)) from None
        except EmollamaError as exc:
            raise ApiError(status_for(exc), str(exc)) from None
        upload.media, upload.name = media, shown_path(server_path)  # as the client gave it, folders kept
        upload.sha256, upload.bytes, head = await asyncio.to_thread(_sha256, media)
        upload.media_type = sniff_media(head)
        if upload.media_type is None:  # the same content check as an upload; the name proves nothing
            raise ApiError(415, f"{upload.name}: not a video, audio or image file this server can read")
    if upload.media is None:
        raise ApiError(422, "send the media in a 'file' field (curl -F file=@clip.mp4 ...)")

    try:
        reader = await asyncio.to_thread(MediaReader, upload.media, max_duration_s=config.max_duration_s)
        if subtitle is not None:
            from emollama.media.subtitles import read_subtitle_file

            await asyncio.to_thread(read_subtitle_file, subtitle)
    except EmollamaError as exc:
        raise ApiError(status_for(exc), _client_message(str(exc), upload, config)) from None
    return {"path": str(upload.media), "name": upload.name, "kind": reader.info.kind, "labels": labels,
            "tier": tier, "fps": fps, "subtitle": str(subtitle) if subtitle is not None else None}


def _client_message(message: str, upload: Upload, config: ServeConfig) -> str:
    """A project message with the server's own paths (the request folder, the allowed root) replaced
    by names the client knows: errors raised deep in decoding name the file they were reading."""
    if upload.media is not None:
        message = message.replace(str(upload.media), upload.name or "the upload")
    message = message.replace(str(upload.folder) + "/", "").replace(str(upload.folder), "the upload")
    if config.allow_root is not None:
        message = message.replace(str(config.allow_root), "…")
    return message


def _sha256(path: Path) -> tuple[str, int, bytes]:
    """SHA-256, size and first bytes (for sniffing) of a server-side file, in one read."""
    digest, size, head = hashlib.sha256(), 0, b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            if not head:
                head = chunk[:SNIFF_BYTES]
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, head


def _install_error_handlers(app: FastAPI) -> None:
    """Every error is ``{"error", "status", "error_id"}``; a traceback stays in the server log."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "status": exc.status_code, "error_id": None},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}", "status": 422,
                             "error_id": None}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        error_id = new_error_id()
        log.error("error id %s: %s %s failed", error_id, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal server error; the server log explains it under error id {error_id}",
                             "status": 500, "error_id": error_id}, status_code=500)


def _install_api_key(app: FastAPI, key: str) -> None:
    """Bearer-token check on the API (health stays open for load balancers; the page itself is public)."""
    expected = key.encode()

    @app.middleware("http")
    async def check_key(request: Request, call_next):  # noqa: ANN001, ANN202
        path = request.url.path
        if path.startswith("/v1/") and path != "/v1/health":
            given = request.headers.get("authorization", "")
            token = given[7:].strip() if given[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(token.encode(), expected):
                return JSONResponse({"error": "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                     "status": 401, "error_id": None}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

