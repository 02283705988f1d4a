"""Annotate many clips: resumable, in one process, in worker processes, or on a Ray cluster.

Resume rule: a clip is finished when ``OUT/clips/<name>.json`` exists and validates. Failed clips
are written to ``OUT/errors/`` instead, so a rerun retries them; a record whose LLM call failed
(``fine.status == "llm_error"``, or with ``vision`` its ``visual_description.status``) is finished
for perception and gets only its LLM steps redone.

Parallelism is :func:`emollama.parallel.map_workers` (serial, worker processes whose initializer
loads the perception models once, or Ray actors that each load them once), shared with
``emollama features``. Results come back to the driver, which alone writes files, so two workers
never race on one path. With Ray the clip paths must be readable from every node (shared storage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emollama.errors import EmollamaError, InputError, error_line
from emollama.llm.factory import LLMSpec, make_backend
from emollama.merr.annotate import AnnotateOptions, annotate_clip, retry_vision, write_fine
from emollama.merr.fine import FineWriter, LLMFineWriter, TemplateFineWriter
from emollama.merr.inputs import ClipItem
from emollama.merr.record import MerrRecord, clip_path, read_record, write_error, write_record
from emollama.merr.vision import VisionDescriber
from emollama.parallel import map_workers

#: (kind, name, payload): kind is "done" (payload = record), "error" (payload = message) or "fine_retry".
Event = tuple[str, str, Any]


@dataclass(frozen=True)
class RunConfig:
    """Everything a worker needs to annotate a clip; plain values, so it pickles to processes and Ray.

    ``vision`` sends each peak frame to the ``llm`` backend for a scene description; it needs an
    ``http(s)://`` backend (:attr:`LLMSpec.accepts_images`) serving a model that reads images.
    """

    options: AnnotateOptions = field(default_factory=AnnotateOptions)
    llm: LLMSpec | None = None
    asr: bool = True
    fps: float | None = None
    vision: bool = False


@dataclass
class Plan:
    todo: list[ClipItem]
    finished: list[str]
    #: finished records whose fine step (or, with ``vision``, vision description) failed: LLM steps only.
    fine_retry: list[MerrRecord]


def check_vision(config: RunConfig) -> None:
    """Refuse ``vision`` without a backend that can carry images, before any model loads."""
    if not config.vision:
        return
    if config.llm is None:
        raise InputError("--llm-vision needs --llm (an OpenAI-compatible server running a vision model)")
    if not config.llm.accepts_images:
        raise InputError(f"--llm-vision needs an http(s):// server; a {config.llm.kind} backend reads text only")


def make_llm_steps(config: RunConfig) -> tuple[FineWriter, VisionDescriber | None]:
    """The fine writer and the optional vision describer, sharing one backend (one cache, one connection cap)."""
    check_vision(config)
    if config.llm is None:
        return TemplateFineWriter(), None
    backend = make_backend(config.llm)
    return LLMFineWriter(backend), VisionDescriber(backend) if config.vision else None


def make_writer(config: RunConfig) -> FineWriter:
    return make_llm_steps(config)[0]


def make_perceiver(config: RunConfig):  # noqa: ANN201 (imported lazily: it loads heavy modules)
    """The perception stage with the run's settings (each worker process builds its own)."""
    from emollama.perception.pipeline import Perceiver
    from emollama.settings import AnalysisSettings

    settings = AnalysisSettings(label_set=config.options.label_set, asr=config.asr)
    return Perceiver(settings.replace(fps=config.fps or None))  # fps None or 0: the default


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
        if config.llm is not None and (record.fine.status == "llm_error" or _vision_failed(record, config)):
            retry.append(record)
    return Plan(todo, finished, retry)


def _vision_failed(record: MerrRecord, config: RunConfig) -> bool:
    vd = record.coarse.visual_description
    return config.vision and vd is not None and vd.status == "llm_error"


def retry_llm_steps(record: MerrRecord, config: RunConfig, writer: FineWriter,
                    describer: VisionDescriber | None) -> tuple[MerrRecord, bool]:
    """Redo the failed LLM steps of a finished record; returns it and whether the vision step was redone.

    A new vision description changes the fine prompt, so the fine step is redone after it too.
    """
    vision_redone = False
    if describer is not None and _vision_failed(record, config):
        from emollama.media.decode import DEFAULT_FPS

        try:
            record = retry_vision(record, describer, config.fps or DEFAULT_FPS)
            vision_redone = True
        except EmollamaError as exc:  # the clip cannot be decoded any more: keep the saved record as it is
            vd = record.coarse.visual_description
            assert vd is not None
            coarse = record.coarse.model_copy(update={"visual_description": vd.model_copy(
                update={"reason": f"{vd.reason}; retry could not decode the frame: {exc}"})})
            record = record.model_copy(update={"coarse": coarse})
    if record.fine.status == "llm_error" or vision_redone:
        record = write_fine(record, writer, config.options)
    return record, vision_redone


def _one(perceiver: Any, item: ClipItem, config: RunConfig, writer: FineWriter,
         describer: VisionDescriber | None = None) -> tuple[str, str, Any]:
    try:
        record = annotate_clip(perceiver, item, config.options, writer, describer=describer)
    except Exception as exc:  # noqa: BLE001 - one odd clip must not stop (and re-stop) the whole run
        return "error", item.name, error_line(exc)
    return "done", item.name, record.model_dump(mode="json")


@dataclass
class _Worker:
    """What one worker (this process, a worker process or a Ray actor) loads once."""

    perceiver: Any
    writer: FineWriter
    describer: VisionDescriber | None
    config: RunConfig


def _load_worker(config: RunConfig, perceiver: Any = None) -> _Worker:
    writer, describer = make_llm_steps(config)
    return _Worker(perceiver if perceiver is not None else make_perceiver(config), writer, describer, config)


def _run_item(worker: _Worker, item: ClipItem) -> tuple[str, str, Any]:
    return _one(worker.perceiver, item, worker.config, worker.writer, worker.describer)


def _crashed(item: ClipItem, exc: BaseException) -> tuple[str, str, Any]:
    return "error", item.name, f"worker failed: {type(exc).__name__}: {exc}"


def run_annotation(items: list[ClipItem], out: Path, config: RunConfig, *, workers: int = 1,
                   ray_address: str | None = None, perceiver: Any = None,
                   on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Annotate what is not finished yet; every result is on disk before ``on_event`` hears of it.

    Returns run statistics (counts and wall time) for the report.
    """
    check_vision(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_run(items, out, config)
    notify = on_event or (lambda _e: None)
    started = time.perf_counter()
    stats: dict[str, Any] = {"clips": len(items), "already_done": len(plan.finished), "to_do": len(plan.todo),
                             "annotated": 0, "failed": 0, "fine_retried": 0, "vision_retried": 0, "workers": workers,
                             "ray_address": ray_address}
    if plan.fine_retry:
        writer, describer = make_llm_steps(config)
        for record in plan.fine_retry:
            fine_failed = record.fine.status == "llm_error"
            record, vision_redone = retry_llm_steps(record, config, writer, describer)
            write_record(out, record)
            stats["fine_retried"] += int(fine_failed or vision_redone)
            stats["vision_retried"] += int(vision_redone)
            notify(("fine_retry", record.name, None))
    if plan.todo:
        # The serial path gets the caller's perception models when it has them; workers load their own.
        serial = workers <= 1 and not ray_address
        state = _load_worker(config, perceiver) if serial and perceiver is not None else None
        results = map_workers(_run_item, plan.todo, init=_load_worker, config=config, workers=workers,
                              ray_address=ray_address, state=state, crashed=_crashed)
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
