"""Training data for instruction tuning: annotation files → samples → token sequences with features.

Reads what ``emollama export --format emotion-llama`` writes and the original project's files in
the same format (``MERR_coarse_grained.txt/json``, ``MERR_fine_grained.txt/json``,
``relative_train_NCEV.txt``-style lists, ``transcription_en_all.csv``):

* the list file: one clip per line, ``name count label [valence]`` (only name and label are used);
* the JSON sibling with the same stem (optional): ``caption`` (the coarse description, target of
  ``[reason]``) and ``smp_reason_caption`` (the fine reasoning, target of ``[reason_v2]``);
* the subtitle table: ``name`` + ``sentence`` (or ``sentence_en``, MER2024's column).

A clip lacking the text a task needs (no caption for ``reason``) trains only the tasks it has; one
with none of the stage's tasks is skipped and listed — the original code crashed with a KeyError.

Targets: a label is its canonical word; captions and reasonings are normalised as the released
weights saw them (:func:`normalize_target`). Each sample's task and instruction are drawn from an
RNG seeded by (run seed, stage, epoch, position), so an epoch's sequence of samples is a pure
function of the config: a resumed run sees exactly what an uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emollama.errors import EmollamaError, UnknownLabelError
from emollama.labels import get_label_set, normalize_label
from emollama.manifest import read_table
from emollama.merr.inputs import clip_name

#: Task tag → the sample field that is its answer.
TASK_FIELD = {"emotion": "label", "reason": "caption", "reason_v2": "fine"}
_SUBTITLE_COLUMNS = ("sentence", "sentence_en", "subtitle", "transcript_en", "text")
_STRIP = re.compile(r"[.!\"()*#:;~]")
#: Longest caption/reasoning target, in words (the released weights' limit).
MAX_TARGET_WORDS = 200


class AnnotationError(EmollamaError):
    """An annotation list, its JSON or its subtitle table is missing, empty or malformed."""


@dataclass(frozen=True)
class AnnotationSample:
    """One annotated clip: its label and whatever texts the annotation files hold for it."""

    name: str
    label: str
    caption: str | None = None
    fine: str | None = None
    subtitle: str | None = None

    def tasks(self, wanted: Sequence[str]) -> list[str]:
        """The tasks of ``wanted`` this sample has a target for."""
        return [t for t in wanted if getattr(self, TASK_FIELD[t])]


def normalize_target(text: str) -> str:
    """Lower-case, ``. ! " ( ) * # : ; ~`` → spaces, whitespace collapsed, at most 200 words.

    Why: the released Emotion-LLaMA weights were trained on targets processed exactly so (BLIP's
    caption processor); training on raw text would teach a different style than the checkpoints a
    user continues from. Commas survive; the demo re-capitalises for display.
    """
    words = _STRIP.sub(" ", text.lower()).split()
    return " ".join(words[:MAX_TARGET_WORDS])


# ------------------------------------------------------------------------------------------ reading
def read_annotations(list_file: str | Path, *, label_set: str = "merr9",
                     subtitles: str | Path | None = None) -> list[AnnotationSample]:
    """The clips of one annotation list with their captions and subtitles (see the module docstring)."""
    path = Path(list_file)
    if not path.is_file():
        raise AnnotationError(f"annotation list not found: {path}")
    labels = get_label_set(label_set)
    rows: list[tuple[str, str]] = []
    bad_lines: list[str] = []
    outside: list[str] = []
    for n, name, raw in _list_rows(path, bad_lines):
        try:
            label = normalize_label(raw)
        except UnknownLabelError:
            label = raw
        if label not in labels.labels:
            outside.append(f"line {n}: {raw!r}")
            continue
        rows.append((name, label))
    if bad_lines:
        raise AnnotationError(f"{path}: lines {', '.join(bad_lines[:10])} are not `name count label [valence]`")
    if outside:
        more = f" … (+{len(outside) - 5} more)" if len(outside) > 5 else ""
        raise AnnotationError(f"{path}: labels outside the {labels.name} label set ({', '.join(labels.labels)}): "
                              f"{'; '.join(outside[:5])}{more}")
    if not rows:
        raise AnnotationError(f"{path}: no clips (the file is empty)")
    dupes = sorted(n for n, k in Counter(r[0] for r in rows).items() if k > 1)
    if dupes:
        raise AnnotationError(f"{path}: clip(s) listed twice: {', '.join(dupes[:5])}")
    texts = _read_json_sibling(path)
    subs = _read_subtitles(Path(subtitles) if subtitles else path.with_name("transcription_en_all.csv"),
                           required=subtitles is not None)
    out = []
    for name, label in rows:
        entry = texts.get(name, {})
        caption = entry.get("caption")
        fine = entry.get("smp_reason_caption") or entry.get("reason_caption")
        out.append(AnnotationSample(name=name, label=label,
                                    caption=str(caption) if caption else None,
                                    fine=str(fine) if fine else None,
                                    subtitle=subs.get(name) or None))
    return out


def _list_rows(path: Path, bad_lines: list[str]) -> list[tuple[int, str, str]]:
    """(line, clip name, label as written) from an NCEV list or a CSV with ``name``/``path`` + ``label``.

    The CSV form is what ``emollama pseudo-label`` writes, so confident predictions on unlabelled
    clips can pre-train ``[emotion]`` as the maintainers advise for the MER2023 number.
    """
    if path.suffix.lower() in (".csv", ".tsv"):
        table = read_table(path, what="annotation table")
        key, lab = table.pick(("name", "path", "video")), table.pick(("label", "emotion"))
        if key is None or lab is None:
            raise AnnotationError(f"{path}: needs a `name` (or `path`) column and a `label` column")
        return [(n, Path(row[key]).stem if key == "path" else row[key], row[lab])
                for n, row in table.rows if row.get(key)]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not UTF-8 text") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            bad_lines.append(str(n))
            continue
        out.append((n, parts[0], parts[2]))
    return out


def _read_json_sibling(list_file: Path) -> dict[str, dict]:
    path = list_file.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise AnnotationError(f"{path} must map clip names to objects (as MERR_*_grained.json do)")
    return data


def _read_subtitles(path: Path, required: bool) -> dict[str, str]:
    if not path.is_file():
        if required:
            raise AnnotationError(f"subtitle table not found: {path}")
        return {}
    table = read_table(path, what="subtitle table")
    col = table.pick(_SUBTITLE_COLUMNS)
    if "name" not in table.fields or col is None:
        raise AnnotationError(f"{path}: needs a `name` column and one of {', '.join(_SUBTITLE_COLUMNS)}")
    return {row["name"]: row.get(col, "") for _, row in table.rows if row.get("name")}


# ------------------------------------------------------------------------------------------ split
def in_validation(name: str, seed: int, fraction: float) -> bool:
    """Seeded hash of the clip name: a clip is held out in every stage or in none."""
    h = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < fraction


def validation_names(cfg_validation, resolve) -> set[str] | None:  # noqa: ANN001 (config + path resolver)
    """Explicit held-out names for ``names``/``column`` splits; ``None`` for ``fraction``/``none``."""
    v = cfg_validation
    if v.by == "names":
        path = resolve(v.names_file)
        if path is None or not path.is_file():
            raise AnnotationError(f"validation.names_file not found: {path}")
        names = {clip_name(line.split()[0]) for line in path.read_text(encoding="utf-8-sig").splitlines()
                 if line.strip()}
        return names - {"name", "path"}  # a header line is not a clip
    if v.by == "column":
        path = resolve(v.table)
        table = read_table(path, what="validation table")
        col = v.column.strip().lower()
        if "name" not in table.fields or col not in table.fields:
            raise AnnotationError(f"{path}: needs a `name` column and the column {v.column!r}")
        wanted = {str(x).strip().lower() for x in v.values}
        return {clip_name(row["name"]) for _, row in table.rows if row.get(col, "").strip().lower() in wanted}
    return None


def split(samples: list[AnnotationSample], cfg_validation, held: set[str] | None
          ) -> tuple[list[AnnotationSample], list[AnnotationSample]]:  # noqa: ANN001
    """(train, validation): disjoint by clip name, the same clip on the same side in every stage."""
    v = cfg_validation
    if v.by == "none":
        return samples, []
    if held is None:
        val = [s for s in samples if in_validation(s.name, v.seed, v.fraction)]
    else:
        val = [s for s in samples if s.name in held]
        if not val:
            raise AnnotationError(f"validation.by={v.by} holds out none of the {len(samples)} clips (e.g. "
                                  f"{', '.join(sorted(held)[:3]) or 'no names'} vs {samples[0].name}); check the "
                                  "names/values, or set validation.by: none to train without validation.")
    names = {s.name for s in val}
    return [s for s in samples if s.name not in names], val


# ------------------------------------------------------------------------------------------ order
def epoch_indices(n: int, count: int, *, seed: int, stage: str, epoch: int, start: int = 0) -> list[int]:
    """Sample positions ``start … start+count-1`` of an epoch: shuffled passes over ``n`` samples, repeated.

    Each pass is a permutation seeded by (seed, stage, epoch, pass number), so position ``k`` of an
    epoch names the same sample no matter where the run was interrupted.
    """
    out: list[int] = []
    cache: dict[int, list[int]] = {}
    for k in range(start, start + count):
        lap, pos = divmod(k, n)
        if lap not in cache:
            order = list(range(n))
            random.Random(f"{seed}:{stage}:{epoch}:{lap}").shuffle(order)
            cache[lap] = order
        out.append(cache[lap][pos])
    return out


def choose_task(sample: AnnotationSample, tasks: Sequence[str], rng: random.Random) -> str:
    return rng.choice(sample.tasks(tasks))


def answer_for(sample: AnnotationSample, task: str) -> str:
    value = getattr(sample, TASK_FIELD[task])
    return value if task == "emotion" else normalize_target(value)
