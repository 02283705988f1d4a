"""A pool of worker processes behind a bounded queue: models load once, strangers cannot pile up work.

Why processes and not threads: an analysis is seconds of CPU in native code that cannot be
interrupted from Python. A process can be killed when a request runs past its time limit, and a
worker that dies (a crash in native code, the OOM killer, an operator's ``kill``) takes down only
the request it was running: the pool answers that request with a 5xx and starts a replacement.

The event loop never blocks on a worker: one reader thread per worker turns the worker's pipe
messages into calls on the loop. Admission is counted per request from its first byte (uploading,
waiting and running alike), so an overloaded server answers 429 before it reads a body.

Protocol on each worker's pipe — to the worker: ``(job_id, job)`` or ``None`` (stop); from the
worker: ``("ready", info)``, ``("load_failed", message)``, ``("event", job_id, name, data)``,
``("result", job_id, data)``, ``("error", job_id, status, message, error_id)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emollama.serve.engine import EngineSpec

__all__ = ["Job", "WorkerPool", "new_error_id"]

log = logging.getLogger("emollama.serve")


def new_error_id() -> str:
    """A short id that ties a client's 500 answer to the server log's traceback."""
    return uuid.uuid4().hex[:12]


# --------------------------------------------------------------------------- the worker process
def worker_main(conn: Any, spec: EngineSpec, threads: int) -> None:  # pragma: no cover - runs in a child
    """Load the engine, then run jobs until told to stop. Never raises: every failure is a message."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server stops it; the server stops us
    # Our own lines at INFO; libraries (faster-whisper logs every clip) only when something is wrong.
    # The log writes to a copy of stderr taken now: the face stage mutes file descriptor 2 while
    # MediaPipe runs, and a worker's log must not go silent with it.
    log_stream = os.fdopen(os.dup(2), "w", buffering=1)
    logging.basicConfig(level=logging.WARNING, stream=log_stream,
                        format=f"%(asctime)s worker {os.getpid()} %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    from emollama.errors import EmollamaError
    from emollama.serve.errors import status_for

    try:
        engine = spec.build()
        if "torch" in sys.modules:  # OMP_NUM_THREADS covers OpenMP; torch keeps its own intra-op count
            sys.modules["torch"].set_num_threads(threads)
        conn.send(("ready", {"pid": os.getpid(), **engine.describe()}))
    except EmollamaError as exc:
        conn.send(("load_failed", str(exc)))
        return
    except Exception as exc:
        log.exception("loading the models failed")
        conn.send(("load_failed", f"loading the models failed: {type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, job = message
        try:
            data = engine.run(job, lambda name, payload, _id=job_id: conn.send(("event", _id, name, payload)))
            conn.send(("result", job_id, data))
        except EmollamaError as exc:
            conn.send(("error", job_id, status_for(exc), str(exc), None))
        except Exception:
            error_id = new_error_id()
            log.error("error id %s: analysis of %s failed\n%s", error_id, job.get("name"), traceback.format_exc())
            conn.send(("error", job_id, 500, f"internal error while analysing the upload; the server log explains "
                                             f"it under error id {error_id}", error_id))


# --------------------------------------------------------------------------- the server side
@dataclass
class Job:
    """One admitted request's analysis: its events arrive on ``events``; the last is result or error."""

    id: int
    payload: dict[str, Any]
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    started: float | None = None
    finished: bool = False
    abandoned: bool = False
    #: Run once the job can no longer touch its files (finished, or dropped from the queue).
    on_release: list[Callable[[], None]] = field(default_factory=list)

    def release(self) -> None:
        callbacks, self.on_release = self.on_release, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # cleanup must never take the server down
                log.exception("cleanup after job %s failed", self.id)


@dataclass
class _Worker:
    process: Any
    conn: Any
    state: str = "loading"  # loading | idle | busy | stopping (being killed) | stopped
    loaded: bool = False  # it did load the models once (a crash after that is worth a replacement)
    job: Job | None = None
    jobs_done: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    killed_for: str | None = None


class WorkerPool:
    """``workers`` engine processes, a FIFO of at most ``max_queue`` waiting jobs, a per-job time limit."""

    def __init__(self, spec: EngineSpec, *, workers: int = 1, max_queue: int = 8, timeout_s: float = 300.0,
                 threads_per_worker: int | None = None) -> None:
        if workers < 1 or max_queue < 0 or timeout_s <= 0:
            raise ValueError("workers >= 1, max_queue >= 0 and timeout_s > 0 are required")
        self.spec = spec
        self.n_workers = workers
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        self.workers: list[_Worker] = []
        self.pending: deque[Job] = deque()
        self.admitted = 0
        self.load_error: str | None = None
        self.info: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._mean_job_s = 10.0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task | None = None
        self._ctx = mp.get_context("spawn")

    # -- life cycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for _ in range(self.n_workers):
            self._spawn()
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for w in self.workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        deadline = time.monotonic() + 5.0
        workers = list(self.workers)  # _on_exit removes them from self.workers meanwhile
        for w in workers:
            await asyncio.to_thread(w.process.join, max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                await asyncio.to_thread(w.process.join, 2.0)
        stopping = {"status": 503, "error": "the server is shutting down", "error_id": None}
        for job in [w.job for w in workers if w.job is not None] + list(self.pending):
            self._finish(job, "error", stopping)  # answers them and removes their folders
        self.pending.clear()

    def _spawn(self) -> None:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=worker_main, args=(child, self.spec, self.threads), daemon=True,
                                    name="emollama-serve-worker")
        process.start()
        child.close()
        worker = _Worker(process=process, conn=parent)
        self.workers.append(worker)
        threading.Thread(target=self._read, args=(worker,), daemon=True, name=f"worker-{process.pid}").start()
        log.info("started worker %s", process.pid)

    def _read(self, worker: _Worker) -> None:
        """Reader thread: the worker's messages, in order, onto the event loop; then its exit."""
        assert self._loop is not None
        try:
            while True:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    break
                self._loop.call_soon_threadsafe(self._on_message, worker, message)
            self._loop.call_soon_threadsafe(self._on_exit, worker)
        except RuntimeError:  # the event loop closed first: the server is shutting down
            return

    # -- state
    @property
    def ready(self) -> bool:
        return any(w.state in ("idle", "busy") for w in self.workers)

    def health(self) -> dict[str, Any]:
        status = "ready" if self.ready else ("failed" if self.load_error else "loading")
        return {"status": status, "error": self.load_error,
                "workers": [{"pid": w.process.pid, "state": w.state, "jobs_done": w.jobs_done}
                            for w in self.workers if w.state != "stopped"],
                "queue": {"waiting": len(self.pending), "limit": self.max_queue},
                "admitted": self.admitted}

    def admit(self) -> bool:
        """Take a slot for a new request (uploading, waiting or running); False when the server is full."""
        if self.admitted >= self.n_workers + self.max_queue:
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        self.admitted = max(0, self.admitted - 1)

    def retry_after_s(self) -> int:
        """A fair guess of when a slot frees up: the queue ahead, at the recent mean job time."""
        ahead = len(self.pending) + 1
        return int(min(600, max(1, math.ceil(self._mean_job_s * ahead / self.n_workers))))

    # -- jobs
    def submit(self, payload: dict[str, Any]) -> Job:
        job = Job(id=next(self._ids), payload=payload)
        self.pending.append(job)
        self._dispatch()
        if not job.finished and job.started is None:
            job.events.put_nowait(("queued", {"position": len(self.pending)}))
        return job

    def abandon(self, job: Job) -> None:
        """The client went away: drop a waiting job now; a running one finishes and is released then."""
        job.abandoned = True
        if job in self.pending:
            self.pending.remove(job)
            job.finished = True
            job.release()

    def _dispatch(self) -> None:
        for worker in self.workers:
            if not self.pending:
                return
            if worker.state != "idle":
                continue
            job = self.pending.popleft()
            try:
                worker.conn.send((job.id, job.payload))
            except (OSError, ValueError):  # it died between two messages: its exit handler replaces it
                self.pending.appendleft(job)
                worker.state = "stopped"
                continue
            worker.state, worker.job, job.started = "busy", job, time.monotonic()

    def _finish(self, job: Job, kind: str, data: dict[str, Any]) -> None:
        if job.finished:
            return
        job.finished = True
        job.events.put_nowait((kind, data))
        if job.started is not None and kind == "result":
            self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * (time.monotonic() - job.started)
        job.release()

    def _on_message(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            worker.state, worker.info, worker.loaded = "idle", message[1], True
            self.info = {k: v for k, v in message[1].items() if k != "pid"}
            self.load_error = None
            log.info("worker %s ready", worker.process.pid)
            self._dispatch()
            return
        if kind == "load_failed":
            self.load_error = message[1]
            worker.state = "stopped"
            log.error("worker %s could not load the models: %s", worker.process.pid, message[1])
            self._fail_pending_if_no_workers()
            return
        job = worker.job
        if job is None or message[1] != job.id:
            return  # a late message of a job already answered (e.g. timed out)
        if kind == "event":
            job.events.put_nowait((message[2], message[3]))
            return
        if kind == "result":
            self._finish(job, "result", message[2])
        elif kind == "error":
            self._finish(job, "error", {"status": message[2], "error": message[3], "error_id": message[4]})
        worker.job = None
        worker.jobs_done += 1
        if worker.killed_for is None:  # a worker being killed gets no new job
            worker.state = "idle"
            self._dispatch()

    def _on_exit(self, worker: _Worker) -> None:
        was_loading = not worker.loaded
        worker.state = "stopped"
        with contextlib.suppress(OSError):
            worker.conn.close()
        worker.process.join(0.5)
        if worker in self.workers:
            self.workers.remove(worker)
        if self._stopping:
            return
        job, worker.job = worker.job, None
        if job is not None:
            if worker.killed_for:
                self._finish(job, "error", {"status": 504, "error": worker.killed_for, "error_id": None})
            else:
                error_id = new_error_id()
                log.error("error id %s: worker %s exited (code %s) while analysing %s", error_id,
                          worker.process.pid, worker.process.exitcode, job.payload.get("name"))
                self._finish(job, "error", {
                    "status": 500, "error_id": error_id,
                    "error": f"the analysis worker stopped unexpectedly (error id {error_id}); the request was "
                             "not completed - send it again"})
        if was_loading:  # loading again would fail again: say why, and do not loop
            if self.load_error is None:
                self.load_error = f"a worker exited while loading the models (exit code {worker.process.exitcode})"
            log.error("not replacing worker %s: %s", worker.process.pid, self.load_error)
            self._fail_pending_if_no_workers()
            return
        log.warning("worker %s exited (code %s); starting a replacement", worker.process.pid,
                    worker.process.exitcode)
        self._spawn()

    def _fail_pending_if_no_workers(self) -> None:
        """With no worker running or loading, nothing would ever answer the queue: answer it now (503)."""
        if any(w.state != "stopped" for w in self.workers):
            return
        reason = {"status": 503, "error_id": None,
                  "error": f"no analysis worker is running ({self.load_error or 'they all stopped'}); the server "
                           "needs a restart"}
        for job in list(self.pending):
            self._finish(job, "error", reason)
        self.pending.clear()

    async def _watch(self) -> None:
        """Kill a worker whose job ran past the time limit (the only way to stop native code)."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for worker in list(self.workers):
                job = worker.job
                if job is not None and job.started is not None and now - job.started > self.timeout_s \
                        and worker.killed_for is None:
                    worker.killed_for = (f"the analysis took longer than the server's limit of {self.timeout_s:g} s "
                                         "and was stopped")
                    log.warning("killing worker %s: job %s ran past %s s", worker.process.pid, job.id,
                                self.timeout_s)
                    worker.state = "stopping"
                    worker.process.kill()
