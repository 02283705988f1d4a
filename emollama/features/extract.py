"""Clips → a feature store, through exactly the media path of ``analyze --tier emotion-llama``.

Why the same path: a model trained on cached features meets live encoders at inference; if the
cache saw other frames, crops or audio normalisation, training would fit features the model never
sees again. So a clip goes through the same three steps as the tier, each a shared function:

1. :meth:`~emollama.perception.pipeline.Perceiver.perceive` with ``keep_crops = encoder_frames =``
   :data:`~emollama.recognize.emotion_llama.N_FRAMES` (what ``Analyzer.analyze`` asks for the tier);
2. :func:`~emollama.recognize.emotion_llama.encoder_inputs` (Perception → encoder inputs);
3. :func:`~emollama.model.tier.encode_media` (preprocessing + the configured encoders), on several
   clips at once (``batch_size``).

Speech recognition is off: words never enter the features (the subtitle is text for the prompt),
and the words stage is the only one ASR changes.

Runs serially, in worker processes or on Ray through :func:`emollama.parallel.map_workers` (the
runner of ``annotate``). Workers return tensors; the driver alone writes the store, one file per
clip, atomically, so a kill loses at most the batches in progress and a rerun skips finished
clips. A clip that fails is recorded with its reason in ``failed.jsonl`` and retried on a rerun.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emollama.errors import InputError, error_line
from emollama.merr.inputs import ClipItem

if TYPE_CHECKING:
    from emollama.features.store import FeatureStore
    from emollama.model.config import EmotionLlamaConfig
    from emollama.model.emotion_llama import MediaFeatures
    from emollama.model.encoders import MediaEncoders
    from emollama.model.tier import EmotionLlamaInputs
    from emollama.settings import AnalysisSettings

#: (kind, clip name, payload): kind "done" (payload: a one-row MediaFeatures) or "error" (payload: the reason).
Event = tuple[str, str, Any]
PATCH_DTYPES = ("float16", "float32")
DEFAULT_BATCH = 1


# ------------------------------------------------------------------------------------------- inputs
def load_model_config(path: str | Path) -> EmotionLlamaConfig:
    """``--config``: a model YAML/JSON, a model folder (its ``config.json``), or a packaged config name."""
    from emollama.model.config import load_model_config as load

    return load(path)


def clip_items(source: str | Path) -> list[ClipItem]:
    """The clips of ``source``: a folder of media, a CSV manifest, one file, or an ``annotate`` output folder.

    An annotate folder is recognised by its ``clips/*.json`` records; each names its media file.
    Clips that failed annotation have no record and are not included.
    """
    from emollama.merr.inputs import discover

    source = Path(source).expanduser()
    records = sorted(p for p in (source / "clips").glob("*.json") if not p.name.startswith(".")) \
        if source.is_dir() else []
    if not records:
        return discover(source)
    from emollama.merr.record import read_record

    items = []
    for path in records:
        try:
            record = read_record(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path} is not a readable annotate record ({type(exc).__name__}); "
                             "fix or remove it") from None
        items.append(ClipItem(record.name, Path(record.path)))
    return items


# ------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ExtractConfig:
    """What a worker needs to extract features; plain values, so it pickles to processes and Ray."""

    model_config: str  # a model YAML/JSON, or a model folder
    device: str = "cpu"
    batch_size: int = DEFAULT_BATCH
    fps: float | None = None  # frames sampled per second by perception; None = analyze's default


def extraction_settings(config: ExtractConfig, patch_dtype: str) -> dict[str, Any]:
    """The settings recorded in the store's manifest (a rerun with other ones is refused)."""
    from emollama.recognize.emotion_llama import N_FRAMES

    check_patch_dtype(patch_dtype)
    return {"patch_dtype": patch_dtype, "fps": _settings(config).fps, "encoder_frames": N_FRAMES}


def check_patch_dtype(patch_dtype: str) -> None:
    if patch_dtype not in PATCH_DTYPES:
        raise InputError(f"--patch-dtype must be one of {', '.join(PATCH_DTYPES)}, got {patch_dtype!r}")


def check_device(device: str) -> None:
    """Refuse an unusable ``--device`` before any model loads."""
    if device == "cpu":
        return  # always there; no need to import torch for it
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA GPU is available here; use --device cpu")


def _settings(config: ExtractConfig) -> AnalysisSettings:
    """Perception as ``analyze`` runs it, speech recognition off (it only changes the words)."""
    from emollama.settings import AnalysisSettings

    return AnalysisSettings(asr=False).replace(fps=config.fps or None)


# ------------------------------------------------------------------------------------------- worker
@dataclass
class _Worker:
    """What one worker (this process, a worker process, a Ray actor) loads once."""

    cfg: EmotionLlamaConfig
    perceiver: Any
    encoders: MediaEncoders


def load_worker(config: ExtractConfig, perceiver: Any = None) -> _Worker:
    """Perception (speech recognition off) and the config's encoders; ``perceiver`` reuses loaded models."""
    from emollama.model.encoders import MediaEncoders
    from emollama.perception.pipeline import Perceiver

    cfg = load_model_config(config.model_config)
    encoders = MediaEncoders.from_config(cfg).to(config.device).eval()
    return _Worker(cfg, perceiver if perceiver is not None else Perceiver(_settings(config)), encoders)


def extract_batch(worker: _Worker, batch: Sequence[ClipItem]) -> list[Event]:
    """Perceive each clip, then encode the batch at once; a clip that fails is an "error" event."""
    from emollama.recognize.emotion_llama import N_FRAMES, encoder_inputs

    ready: list[tuple[str, EmotionLlamaInputs]] = []
    events: list[Event] = []
    for item in batch:
        try:
            p = worker.perceiver.perceive(item.path, keep_crops=N_FRAMES, encoder_frames=N_FRAMES)
            ready.append((item.name, encoder_inputs(p, N_FRAMES)[0]))
        except Exception as exc:  # noqa: BLE001 - one odd clip must not stop (and re-stop) the whole run
            events.append(("error", item.name, error_line(exc)))
    return events + encode_clips(worker.cfg, worker.encoders, ready)


def encode_clips(cfg: EmotionLlamaConfig, encoders: MediaEncoders,
                 clips: Sequence[tuple[str, EmotionLlamaInputs]]) -> list[Event]:
    """:func:`~emollama.model.tier.encode_media` on the batch; if it fails, clip by clip (to name the bad one)."""
    from emollama.model.tier import encode_media

    if not clips:
        return []
    try:
        feats = encode_media(cfg, encoders, [c for _, c in clips])
    except Exception as exc:  # noqa: BLE001
        if len(clips) == 1:
            return [("error", clips[0][0], error_line(exc))]
        return [event for clip in clips for event in encode_clips(cfg, encoders, [clip])]
    return [("done", name, feature_row(feats, i)) for i, (name, _) in enumerate(clips)]


def feature_row(feats: MediaFeatures, row: int) -> MediaFeatures:
    """Row ``row`` as a one-clip batch on the CPU (what travels back from a worker).

    Cloned: a view would carry the whole batch's storage to the driver for every row.
    """
    from emollama.model.emotion_llama import MediaFeatures

    return MediaFeatures(**{f.name: getattr(feats, f.name)[row : row + 1].detach().cpu().clone()
                            for f in fields(feats)})


def _crashed(batch: Sequence[ClipItem], exc: BaseException) -> list[Event]:
    return [("error", item.name, f"worker failed: {type(exc).__name__}: {exc}") for item in batch]


# ------------------------------------------------------------------------------------------- driver
def new_stats(store: FeatureStore, names: Sequence[str]) -> dict[str, Any]:
    """Counts before a run; old failures are forgotten here because this run retries them."""
    done = sum(store.has(n) for n in names)
    store.clear_failures()
    return {"clips": len(names), "skipped": done, "to_do": len(names) - done, "done": 0, "failed": 0,
            "failures": {}, "wall_s": 0.0}


def write_events(store: FeatureStore, batches: Iterable[list[Event]], stats: dict[str, Any],
                 on_event: Callable[[Event], None] | None) -> dict[str, Any]:
    """Write each result as it comes (the driver alone writes); ``on_event`` hears of it once it is on disk."""
    notify = on_event or (lambda _e: None)
    started = time.perf_counter()
    try:
        for events in batches:
            for kind, name, payload in events:
                if kind == "done":
                    store.write(name, payload)
                    stats["done"] += 1
                else:
                    store.record_failure(name, str(payload))
                    stats["failed"] += 1
                    stats["failures"][name] = str(payload)
                notify((kind, name, payload))
    finally:
        stats["wall_s"] = round(stats["wall_s"] + time.perf_counter() - started, 3)
    return stats


def extract_features(items: Sequence[ClipItem], store: FeatureStore, config: ExtractConfig, *,
                     workers: int = 1, ray_address: str | None = None, perceiver: Any = None,
                     on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Extract every clip of ``items`` that has no file in ``store`` yet; returns run statistics.

    ``perceiver`` (serial runs only) reuses perception models the caller already loaded.
    """
    from emollama.parallel import map_workers

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if config.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {config.batch_size}")
    stats = new_stats(store, [it.name for it in items])
    todo = [it for it in items if not store.has(it.name)]
    if not todo:
        return stats
    batches = [todo[i : i + config.batch_size] for i in range(0, len(todo), config.batch_size)]
    serial = workers <= 1 and not ray_address
    state = load_worker(config, perceiver) if serial and perceiver is not None else None
    results = map_workers(extract_batch, batches, init=load_worker, config=config, workers=workers,
                          ray_address=ray_address, state=state, crashed=_crashed)
    return write_events(store, results, stats, on_event)
