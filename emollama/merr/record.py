"""The per-clip MERR record written to ``OUT/clips/<name>.json`` (versioned, validated on read).

One file per clip, written atomically (temporary file + ``os.replace``), so a crash can leave at
most a stray temporary file and never a half-written record. Exports and reports read only these
files; nothing else carries state between runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from emollama.files import atomic_write_text

MERR_FORMAT = "emollama.merr-clip/1"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class LabelInfo(_M):
    value: str = Field(description="canonical label used for filtering and export")
    source: Literal["ground_truth", "pseudo"]
    given_as: str | None = Field(None, description="the spelling in labels.csv, for ground truth")
    confidence: float | None = Field(None, description="fused score of a pseudo-label")


class ActiveAU(_M):
    au: str
    intensity: float
    phrase: str


class PeakInfo(_M):
    index: int = Field(description="index among the sampled frames")
    native_frame: int | None = Field(None, description="frame number at the file's own frame rate")
    time_s: float
    total_intensity: float
    au: dict[str, float]


class ToneInfo(_M):
    word: str | None
    evidence: str


class SubtitleInfo(_M):
    text: str
    source: Literal["subtitle", "asr", "none"]
    language: str | None = None


class VisualDescription(_M):
    """A vision model's description of the peak frame, kept beside the measured one, never instead of it.

    Like :class:`Fine`, only ``status == "ok"`` carries text; a filtered reply or a failed request
    keeps the reason, and ``llm_error`` is retried by the next run.
    """

    status: Literal["ok", "filtered", "llm_error", "skipped"]
    source: Literal["llm", "none"]
    text: str | None = None
    model: str | None = Field(None, description="the model name the server reported")
    reason: str | None = Field(None, description="why filtered / skipped / failed")
    attempts: int = 0
    frame_time_s: float | None = Field(None, description="time of the frame that was shown to the model")
    image_size: list[int] | None = Field(None, description="[width, height] of the JPEG sent")
    image_bytes: int | None = None


class Coarse(_M):
    peak: PeakInfo | None
    active_aus: list[ActiveAU]
    visual_expression: str
    audio_tone: ToneInfo
    audio_description: str
    subtitle: SubtitleInfo
    visual_objective: dict = Field(description="the measured (offline) description, always present")
    visual_description: VisualDescription | None = Field(
        None, description="a vision LLM's description of the peak frame (only with --llm-vision)")
    caption: str


class FilterInfo(_M):
    kept: bool
    code: str
    reason: str
    matched_aus: list[str] = Field(default_factory=list)
    strength: float | None = None


class Fine(_M):
    status: Literal["ok", "filtered", "llm_error", "skipped"]
    source: Literal["template", "llm", "none"]
    text: str | None = None
    model: str | None = None
    reason: str | None = Field(None, description="why filtered / skipped / failed")
    attempts: int = 0


class MerrRecord(_M):
    format: str = MERR_FORMAT
    emollama_version: str
    name: str
    path: str
    duration_s: float
    native_fps: float | None
    n_frames: int = Field(description="frames in the file (native rate), the C column of Emotion-LLaMA lists")
    has_audio: bool
    label: LabelInfo
    prediction: dict[str, float] = Field(description="clues-tier scores over the label set")
    predicted_label: str | None
    coarse: Coarse
    filter: FilterInfo
    fine: Fine
    clues_reasoning: str = Field(description="the analyze pipeline's own explanation of its prediction")
    timings_s: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


def clip_path(out: Path, name: str) -> Path:
    return Path(out) / "clips" / f"{name}.json"


def error_path(out: Path, name: str) -> Path:
    return Path(out) / "errors" / f"{name}.json"


def write_record(out: Path, record: MerrRecord) -> Path:
    path = clip_path(out, record.name)
    atomic_write_text(path, record.model_dump_json(indent=1))
    error_path(out, record.name).unlink(missing_ok=True)
    return path


def write_error(out: Path, name: str, path: str, message: str) -> Path:
    """Failures live apart from records: a rerun retries them, an export never sees them."""
    target = error_path(out, name)
    atomic_write_text(target, json.dumps({"name": name, "path": path, "error": message}, ensure_ascii=False))
    return target


def read_record(path: Path) -> MerrRecord:
    return MerrRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))


def read_records(out: Path) -> list[MerrRecord]:
    """Every finished record under ``OUT/clips``, sorted by name (stray temp files are ignored)."""
    folder = Path(out) / "clips"
    if not folder.is_dir():
        return []
    return [read_record(p) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]


def read_errors(out: Path) -> list[dict]:
    folder = Path(out) / "errors"
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))
            if not p.name.startswith(".")]
