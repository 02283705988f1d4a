"""Annotate many clips: resumable, in one process, in worker processes, or on a Ray cluster.

Resume rule: a clip is finished when ``OUT/clips/<name>.json`` exists and validates. Failed clips
are written to ``OUT/errors/`` instead, so a rerun retries them; a record whose LLM call failed
(``fine.status == "llm_error"``) is finished for perception and gets only its fine step redone.

Parallelism reuses existing engines: :class:`concurrent.futures.ProcessPoolExecutor` (each
worker loads the perception models once, in its initializer) and Ray actors (each actor loads
them once). Results come back to the driver, which alone writes files, so two workers never race
on one path. With Ray the clip paths must be readable from every node (shared storage).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emollama.errors import EmollamaError, InputError
from emollama.llm.factory import LLMSpec, make_backend
from emollama.merr.annotate import AnnotateOptions, annotate_clip, write_fine
from emollama.merr.fine import FineWriter, LLMFineWriter, TemplateFineWriter
from emollama.merr.inputs import ClipItem
from emollama.merr.record import MerrRecord, clip_path, read_record, write_error, write_record

#: (kind, name, payload): kind is "done" (payload = record), "error" (payload = message) or "fine_retry".
Event = tuple[str, str, Any]


@dataclass(frozen=True)
class RunConfig:
    options: AnnotateOptions = field(default_factory=AnnotateOptions)
    llm: LLMSpec | None = None
    asr: bool = True
    fps: float | None = None


@dataclass
class Plan:
    todo: list[ClipItem]
    finished: list[str]
    fine_retry: list[MerrRecord]


def make_writer(config: RunConfig) -> FineWriter:
    return LLMFineWriter(make_backend(config.llm)) if config.llm is not None else TemplateFineWriter()


def make_analyzer(config: RunConfig):  # noqa: ANN201 (Analyzer is imported lazily: it loads heavy modules)
    from emollama.api import Analyzer

    kwargs: dict[str, Any] = {"label_set": config.options.label_set, "asr": config.asr}
    if config.fps:
        kwargs["fps"] = config.fps
    return Analyzer(**kwargs)


def plan_run(items: list[ClipItem], out: Path, config: RunConfig) -> Plan:
    """Split items into finished, to do, and finished-but-the-LLM-failed (fine step only)."""
    todo, finished, retry = [], [], []
    for item in items:
        path = clip_path(out, item.name)
        try:
            record = read_record(path) if path.exists() else None
        except ValueError:
            record = None  # unreadable (foreign or hand-edited): redo it
        if record is None:
            todo.append(item)
            continue
        finished.append(item.name)
        if config.llm is not None and record.fine.status == "llm_error":
            retry.append(record)
    return Plan(todo, finished, retry)


def _one(analyzer: Any, item: ClipItem, config: RunConfig, writer: FineWriter) -> tuple[str, str, Any]:
    try:
        record = annotate_clip(analyzer, item, config.options, writer)
    except EmollamaError as exc:
        return "error", item.name, str(exc)
    return "done", item.name, record.model_dump(mode="json")


# --- worker processes -----------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _worker_init(config: RunConfig) -> None:
    _WORKER["analyzer"] = make_analyzer(config)
    _WORKER["writer"] = make_writer(config)
    _WORKER["config"] = config


def _worker_run(item: ClipItem) -> tuple[str, str, Any]:
    return _one(_WORKER["analyzer"], item, _WORKER["config"], _WORKER["writer"])


def _serial(items: list[ClipItem], config: RunConfig, analyzer: Any) -> Iterator[tuple[str, str, Any]]:
    analyzer = analyzer if analyzer is not None else make_analyzer(config)
    writer = make_writer(config)
    for item in items:
        yield _one(analyzer, item, config, writer)


def _processes(items: list[ClipItem], config: RunConfig, workers: int) -> Iterator[tuple[str, str, Any]]:
    import multiprocessing as mp

    # "spawn": forking a process that already holds MediaPipe/torch threads can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init, initargs=(config,)) as pool:
        futures = {pool.submit(_worker_run, item): item for item in items}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # a worker died (OOM, native crash): record it, go on
                yield "error", futures[fut].name, f"worker failed: {type(exc).__name__}: {exc}"


def _ray(items: list[ClipItem], config: RunConfig, workers: int, address: str) -> Iterator[tuple[str, str, Any]]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise InputError("--ray-address needs Ray: pip install 'ray[default]'") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)

    @ray.remote
    class Annotator:
        def __init__(self, cfg: RunConfig) -> None:
            _worker_init(cfg)

        def run(self, item: ClipItem) -> tuple[str, str, Any]:
            return _worker_run(item)

    actors = [Annotator.remote(config) for _ in range(max(1, workers))]
    pool = ActorPool(actors)
    try:
        yield from pool.map_unordered(lambda actor, item: actor.run.remote(item), items)
    finally:
        for actor in actors:
            ray.kill(actor)


def run_annotation(items: list[ClipItem], out: Path, config: RunConfig, *, workers: int = 1,
                   ray_address: str | None = None, analyzer: Any = None,
                   on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Annotate what is not finished yet; every result is on disk before ``on_event`` hears of it.

    Returns run statistics (counts and wall time) for the report.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_run(items, out, config)
    notify = on_event or (lambda _e: None)
    started = time.perf_counter()
    stats: dict[str, Any] = {"clips": len(items), "already_done": len(plan.finished), "to_do": len(plan.todo),
                             "annotated": 0, "failed": 0, "fine_retried": 0, "workers": workers,
                             "ray_address": ray_address}
    if plan.fine_retry:
        writer = make_writer(config)
        for record in plan.fine_retry:
            write_record(out, write_fine(record, writer, config.options))
            stats["fine_retried"] += 1
            notify(("fine_retry", record.name, None))
    if plan.todo:
        if ray_address:
            results = _ray(plan.todo, config, workers, ray_address)
        elif workers > 1:
            results = _processes(plan.todo, config, workers)
        else:
            results = _serial(plan.todo, config, analyzer)
        paths = {it.name: str(it.path) for it in plan.todo}
        for kind, name, payload in results:
            if kind == "done":
                record = MerrRecord.model_validate(payload)
                write_record(out, record)
                stats["annotated"] += 1
                notify(("done", name, record))
            else:
                write_error(out, name, paths.get(name, ""), str(payload))
                stats["failed"] += 1
                notify(("error", name, payload))
    stats["wall_s"] = round(time.perf_counter() - started, 3)
    return stats
