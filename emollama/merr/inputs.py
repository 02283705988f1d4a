"""What to annotate: a folder of clips or a CSV manifest, plus optional label and subtitle tables.

Clip names are file stems (Emotion-LLaMA keys every file by its stem), so two clips with the same
stem in different folders are refused rather than silently overwriting each other's record.
Label spellings are normalised with :func:`emollama.labels.normalize_label`; every unknown
spelling is reported at once, with its row, before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emollama.errors import InputError, ManifestError, UnknownLabelError
from emollama.labels import CANONICAL, normalize_label
from emollama.manifest import read_table

MEDIA_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".m4v", ".wav", ".mp3", ".flac",
                            ".m4a", ".ogg", ".jpg", ".jpeg", ".png", ".bmp"})
_SUBTITLE_COLUMNS = ("subtitle", "sentence", "transcript_en", "transcript", "text", "sentence_en")
_NAME_COLUMNS = ("name", "path", "file", "video")


@dataclass(frozen=True)
class ClipItem:
    name: str
    path: Path
    subtitle: str | None = None
    label: str | None = None  # canonical
    label_given_as: str | None = None


def clip_name(value: str) -> str:
    """A clip name from a list cell: `videos/x.mp4` and `x` both name clip `x` (media suffixes only)."""
    return Path(value).stem if Path(value).suffix.lower() in MEDIA_SUFFIXES else value


def discover(source: Path) -> list[ClipItem]:
    """Clips from a folder (recursive, media suffixes only) or a CSV with a ``path`` column."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        items = [ClipItem(p.stem, p.resolve()) for p in files]
    elif source.is_file() and source.suffix.lower() in (".csv", ".tsv"):
        table = read_table(source)
        fields, rows = table.fields, [row for _, row in table.rows]
        if "path" not in fields:
            raise ManifestError(f"{source}: needs a 'path' column (found: {', '.join(fields) or 'none'})")
        sub_col = table.pick(_SUBTITLE_COLUMNS)
        items = []
        for n, row in table.rows:
            if not row.get("path"):
                raise ManifestError(f"{source}, line {n}: empty 'path'")
            p = (source.parent / row["path"]).resolve()
            items.append(ClipItem(p.stem, p, (row.get(sub_col) or None) if sub_col else None))
        if "label" in fields:
            items = apply_labels(items, {it.name: row.get("label", "") for it, row in zip(items, rows, strict=True)
                                         if row.get("label")}, str(source))
    elif source.is_file():
        items = [ClipItem(source.stem, source.resolve())]
    else:
        raise InputError(f"{source}: no such file or folder")
    if not items:
        raise InputError(f"{source}: no media files found")
    names = [it.name for it in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ManifestError(f"{source}: several clips share the name(s) {', '.join(dupes[:5])}; names must be unique")
    return items


def read_labels(path: Path) -> dict[str, str]:
    """``name,label`` (or ``path,label``) → {name: spelling as given}."""
    table = read_table(path, what="labels file")
    fields, rows = table.fields, [row for _, row in table.rows]
    key = table.pick(_NAME_COLUMNS)
    lab = table.pick(("label", "emotion", "discrete"))
    if key is None or lab is None:
        raise ManifestError(f"{path}: needs a 'name' (or 'path') column and a 'label' column "
                            f"(found: {', '.join(fields) or 'none'})")
    return {clip_name(r[key]): r[lab] for r in rows if r.get(key) and r.get(lab)}


def read_subtitles(path: Path) -> dict[str, str]:
    """``name,sentence`` (Emotion-LLaMA's transcription CSV) or any of ``subtitle/transcript_en/text``."""
    table = read_table(path, what="subtitles file")
    rows = [row for _, row in table.rows]
    key = table.pick(_NAME_COLUMNS)
    col = table.pick(_SUBTITLE_COLUMNS)
    if key is None or col is None:
        raise ManifestError(f"{path}: needs a 'name' (or 'path') column and one of {', '.join(_SUBTITLE_COLUMNS)}")
    return {clip_name(r[key]): r[col] for r in rows if r.get(key) and r.get(col)}


def apply_labels(items: list[ClipItem], labels: dict[str, str], where: str) -> list[ClipItem]:
    """Attach canonical labels; all unknown spellings are reported together in one error."""
    bad = []
    canon: dict[str, str] = {}
    for name, spelling in labels.items():
        try:
            canon[name] = normalize_label(spelling)
        except UnknownLabelError:
            bad.append(f"{spelling!r} ({name})")
    if bad:
        raise UnknownLabelError(f"{where}: unknown label(s) {', '.join(bad[:10])}"
                                f"{' and more' if len(bad) > 10 else ''}; known labels: {', '.join(CANONICAL)}")
    return [ClipItem(it.name, it.path, it.subtitle, canon.get(it.name, it.label),
                     labels.get(it.name, it.label_given_as)) for it in items]


def apply_subtitles(items: list[ClipItem], subs: dict[str, str]) -> list[ClipItem]:
    return [ClipItem(it.name, it.path, subs.get(it.name, it.subtitle), it.label, it.label_given_as) for it in items]
