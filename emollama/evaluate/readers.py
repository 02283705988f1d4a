"""Read prediction and reference files in the formats users already hold.

Supported, detected from the file and its columns rather than from flags:

* emollama's batch output (``emollama analyze --manifest … --out preds.jsonl``): one JSON object per
  line with ``name``, ``status``, ``label``, ``reasoning``, ``error``;
* any CSV/TSV/JSON/JSONL with a name column plus a ``label`` or a free-text column;
* Emotion-LLaMA annotation lists (``name count label valence`` separated by spaces);
* EMER v1 CSV (``names, emotions, subtitles, reasons``) and v2 (``name, chinese, english``);
* DFEW-style ``name,label`` and MER-OV ``name,openset`` (a Python/JSON list or a comma list).

Problems a user can live with (a duplicate with the same content, an unreadable JSONL line, a
semicolon-separated CSV) become warnings that end up in the report; problems that make the numbers
meaningless (no name column, an empty file, one name with two different labels) raise
:class:`~emollama.evaluate.errors.EvaluationInputError`.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from emollama.evaluate.errors import EvaluationInputError
from emollama.manifest import header_delimiter

#: Media extensions stripped from names so ``clip.mp4`` matches ``clip``.
_MEDIA_EXT = re.compile(r"\.(?:mp4|avi|mkv|mov|webm|flv|wav|mp3|flac|m4a|npy)$", re.IGNORECASE)

NAME_COLUMNS = ("name", "names", "video", "video_name", "clip", "sample", "sample_name", "id", "filename")
LABEL_COLUMNS = ("label", "emotion", "emotions", "emo", "discrete", "class", "prediction", "pred")
VALENCE_COLUMNS = ("valence", "val")
OPENSET_COLUMNS = ("openset", "open_set", "ov_labels", "ov", "labels")
#: Free-text columns by language preference; EMER v1 ships ``reasons`` (English) and its Chinese
#: twin ``chi_reasons``; v2 ships ``english`` and ``chinese``; the analyzer writes ``reasoning``.
TEXT_COLUMNS = {
    "en": (
        "reasoning",
        "reason",
        "reasons",
        "english",
        "eng_reasons",
        "description",
        "caption",
        "smp_reason_caption",
        "text",
        "answer",
        "output",
        "response",
    ),
    "zh": (
        "chi_reasons",
        "chinese",
        "reasoning",
        "reason",
        "reasons",
        "description",
        "caption",
        "smp_reason_caption",
        "text",
        "answer",
        "output",
        "response",
    ),
}
#: Values that mean "no valence": empty cells and the ``-10`` placeholder of Emotion-LLaMA's
#: test lists, which is not a valence (the scale is about −5…5).
VALENCE_PLACEHOLDERS = frozenset({"", "-10", "-10.0", "nan", "none", "null"})

Lang = Literal["en", "zh"]


@dataclass(frozen=True)
class Record:
    """One row of a prediction or reference file, with fields under their canonical names."""

    name: str
    line: int
    label: str | None = None
    text: str | None = None
    valence: float | None = None
    openset: tuple[str, ...] | None = None
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    #: The openset cell as written (string or JSON list): the official MER2024 scorer splits the
    #: string its own way, so an exact reproduction must start from it, not from ``openset``.
    openset_raw: str | list | None = field(default=None, compare=False)


@dataclass
class Table:
    """Records keyed by normalised name, in file order, plus what was noticed while reading."""

    path: Path
    format: str
    records: dict[str, Record]
    warnings: list[str] = field(default_factory=list)
    columns: tuple[str, ...] = ()


def normalize_name(raw: object) -> str:
    """Trim spaces and a media extension so ``"clip01.mp4 "`` and ``clip01`` are one sample."""
    return _MEDIA_EXT.sub("", str(raw).strip())


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def parse_openset(value: object) -> tuple[str, ...]:
    """Read an open-vocabulary label list: a JSON/Python list, or words separated by , ; / 、 ，."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        text = str(value).strip()
        items = []
        if text.startswith("["):
            try:
                parsed = ast.literal_eval(text)
                if isinstance(parsed, list | tuple):
                    items = [str(v) for v in parsed]
            except (ValueError, SyntaxError):
                items = []
            if not items:
                text = text.strip("[]")
        if not items:
            items = re.split(r"[,;/、，；]", text)
    out = []
    for item in items:
        word = item.strip().strip("'\"").strip().lower()
        if word and word not in out:
            out.append(word)
    return tuple(out)


def _float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    if text in VALENCE_PLACEHOLDERS:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number else None


# ---------------------------------------------------------------------------------------------
# raw rows


def _read_text(path: Path) -> str:
    if not path.exists():
        raise EvaluationInputError(f"{path} does not exist")
    if path.is_dir():
        raise EvaluationInputError(f"{path} is a directory; give the file inside it")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvaluationInputError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        raise EvaluationInputError(f"{path} is empty")
    return text


def _rows_jsonl(path: Path, text: str, warnings: list[str]) -> list[tuple[int, dict[str, Any]]]:
    rows, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if not isinstance(obj, dict):
            bad.append(number)
            continue
        rows.append((number, obj))
    if not rows:
        raise EvaluationInputError(f"{path}: no line is a JSON object (expected one object per line)")
    if bad:
        warnings.append(f"{path.name}: skipped {len(bad)} line(s) that are not JSON objects: {_list(bad)}")
    return rows


def _rows_json(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if "\n{" in text.strip():
            raise EvaluationInputError(
                f"{path} holds one JSON object per line; rename it to .jsonl or fix line {exc.lineno}"
            ) from exc
        raise EvaluationInputError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(data, dict):
        for key in ("predictions", "results", "items", "samples", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if isinstance(data, list):
        rows = [(i + 1, obj) for i, obj in enumerate(data) if isinstance(obj, dict)]
        if len(rows) != len(data):
            raise EvaluationInputError(f"{path}: every item of the JSON list must be an object")
        return rows
    if isinstance(data, dict):
        # A dict keyed by sample name (MERR JSON style): {name: {...}} or {name: "label"}.
        rows = []
        for i, (key, value) in enumerate(data.items(), start=1):
            if isinstance(value, dict):
                rows.append((i, {"name": key, **value}))
            elif isinstance(value, list):
                rows.append((i, {"name": key, "openset": value}))
            else:
                rows.append((i, {"name": key, "label": value}))
        return rows
    raise EvaluationInputError(f"{path}: expected a JSON list of objects or an object keyed by name")


def _looks_like_ncev(lines: list[str]) -> bool:
    first = lines[0].split()
    return (
        "," not in lines[0]
        and "\t" not in lines[0]
        and len(first) in (3, 4)
        and first[1].lstrip("-").isdigit()
    )


def _rows_ncev(path: Path, lines: list[str], warnings: list[str]) -> list[tuple[int, dict[str, Any]]]:
    rows, bad = [], []
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (3, 4):
            bad.append(number)
            continue
        row: dict[str, Any] = {"name": parts[0], "label": parts[2]}
        if len(parts) == 4:
            row["valence"] = parts[3]
        rows.append((number, row))
    if bad:
        warnings.append(
            f"{path.name}: skipped {len(bad)} line(s) that are not 'name count label [valence]': {_list(bad)}"
        )
    return rows


def _delimiter(path: Path, header: str) -> str:
    """The header's separator among tab, comma, ';' and '|' (tab first for a ``.tsv``)."""
    candidates = ("\t", ",", ";", "|") if path.suffix.lower() == ".tsv" else (",", "\t", ";", "|")
    return header_delimiter(header, candidates)


def _rows_csv(path: Path, text: str, warnings: list[str]) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    header = text.splitlines()[0]
    delim = _delimiter(path, header)
    expected = "\t" if path.suffix.lower() == ".tsv" else ","
    if delim != expected:
        names = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}
        warnings.append(
            f"{path.name}: read as {names[delim]}-separated (the extension suggests {names[expected]})"
        )
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    columns = [c.strip() for c in next(reader)]
    rows, bad = [], []
    for values in reader:
        number = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(columns):
            bad.append(number)
            continue
        rows.append((number, dict(zip(columns, values, strict=True))))
    if bad:
        warnings.append(
            f"{path.name}: skipped {len(bad)} row(s) whose field count differs from the header's "
            f"{len(columns)}: {_list(bad)}"
        )
    return rows, delim


def read_rows(path: str | Path) -> tuple[list[tuple[int, dict[str, Any]]], str, list[str]]:
    """Rows as ``(line_number, {column: value})`` plus the detected format and warnings."""
    path = Path(path)
    text = _read_text(path)
    warnings: list[str] = []
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _rows_jsonl(path, text, warnings), "jsonl", warnings
    if suffix == ".json":
        return _rows_json(path, text), "json", warnings
    lines = [line for line in text.splitlines() if line.strip()]
    if lines[0].lstrip().startswith("{"):
        return _rows_jsonl(path, text, warnings), "jsonl", warnings
    if _looks_like_ncev(lines):
        return _rows_ncev(path, text.splitlines(), warnings), "emotion-llama-list", warnings
    rows, delim = _rows_csv(path, text, warnings)
    return rows, ("tsv" if delim == "\t" else "csv"), warnings


# ---------------------------------------------------------------------------------------------
# records


def _pick(columns: Iterable[str], wanted: Iterable[str]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for name in wanted:
        if name in lowered:
            return lowered[name]
    return None


def _list(numbers: list[int] | list[str], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" … (+{len(numbers) - limit} more)" if len(numbers) > limit else "")


def _record(row: dict[str, Any], line: int, cols: dict[str, str | None]) -> Record | None:
    name_col = cols["name"]
    raw_name = row.get(name_col) if name_col else None
    if (raw_name is None or not str(raw_name).strip()) and row.get("path"):
        raw_name = Path(str(row["path"])).stem
    if raw_name is None or not str(raw_name).strip():
        return None
    result = row.get("result") if isinstance(row.get("result"), dict) else {}
    status_raw = str(row.get("status", "ok")).strip().lower()
    status: Literal["ok", "error"] = "error" if status_raw in ("error", "failed", "fail") else "ok"
    label = _text(row.get(cols["label"])) if cols["label"] else None
    text = _text(row.get(cols["text"])) if cols["text"] else None
    if text is None and result:
        text = _text(result.get("reasoning"))
    if label is None and result:
        label = _text(result.get("label"))
    valence = _float(row.get(cols["valence"])) if cols["valence"] else None
    if valence is None and result:
        valence = _float(result.get("valence"))
    openset_raw = row.get(cols["openset"]) if cols["openset"] else None
    openset = parse_openset(openset_raw) if cols["openset"] else None
    return Record(
        name=normalize_name(raw_name),
        line=line,
        label=label,
        text=text,
        valence=valence,
        openset=openset,
        status=status,
        error=_text(row.get("error")) if status == "error" else None,
        openset_raw=openset_raw if isinstance(openset_raw, str | list) else None,
    )


def read_table(path: str | Path, *, lang: Lang = "en", role: str = "file") -> Table:
    """Read any supported file into :class:`Record` objects keyed by name.

    Duplicates: identical rows are merged with a warning; rows that disagree keep the *last* one
    for predictions (a resumed batch run appends its retry) and raise for references (the truth
    must be unambiguous). ``role`` is ``"predictions"`` or ``"references"`` and only affects that
    rule and the wording.
    """
    path = Path(path)
    rows, fmt, warnings = read_rows(path)
    columns: list[str] = []
    for _, row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    cols = {
        "name": _pick(columns, NAME_COLUMNS),
        "label": _pick(columns, LABEL_COLUMNS),
        "valence": _pick(columns, VALENCE_COLUMNS),
        "openset": _pick(columns, OPENSET_COLUMNS),
        "text": _pick(columns, TEXT_COLUMNS[lang]),
    }
    if cols["openset"] == cols["label"]:
        cols["openset"] = None
    if cols["name"] is None and "path" not in columns:
        raise EvaluationInputError(
            f"{path}: no name column; found columns {columns[:12]}, expected one of {list(NAME_COLUMNS)}"
            + (" (is the delimiter right?)" if len(columns) == 1 else "")
        )
    records: dict[str, Record] = {}
    unnamed: list[int] = []
    same_dupes: list[str] = []
    conflicts: list[str] = []
    for line, row in rows:
        record = _record(row, line, cols)
        if record is None:
            unnamed.append(line)
            continue
        previous = records.get(record.name)
        if previous is not None:
            if replace(previous, line=0) == replace(record, line=0):
                same_dupes.append(record.name)
                continue
            conflicts.append(f"{record.name} (lines {previous.line} and {record.line})")
            if role == "references":
                continue
        records[record.name] = record
    if unnamed:
        warnings.append(f"{path.name}: skipped {len(unnamed)} row(s) with an empty name: {_list(unnamed)}")
    if same_dupes:
        warnings.append(
            f"{path.name}: {len(same_dupes)} duplicate name(s) with identical rows merged: "
            f"{_list(same_dupes)}"
        )
    if conflicts and role == "references":
        raise EvaluationInputError(
            f"{path}: {len(conflicts)} name(s) appear more than once with different content: "
            f"{_list(conflicts)}"
        )
    if conflicts:
        warnings.append(
            f"{path.name}: {len(conflicts)} duplicate name(s) with different content; the last "
            f"line wins: {_list(conflicts)}"
        )
    if not records:
        raise EvaluationInputError(f"{path}: no usable rows")
    return Table(path=path, format=fmt, records=records, warnings=warnings, columns=tuple(columns))


@dataclass(frozen=True)
class Alignment:
    """References matched with predictions, and everything that did not match, by name."""

    names: tuple[str, ...]  # reference names in reference order
    missing: tuple[str, ...]  # in references, no prediction line at all
    failed: tuple[str, ...]  # in references, prediction line has status "error"
    extra: tuple[str, ...]  # predictions with no reference (ignored by every metric)

    def to_dict(self) -> dict[str, list[str]]:
        """The unmatched names, as every metrics JSON reports them."""
        return {"missing": list(self.missing), "failed": list(self.failed), "extra": list(self.extra)}


def align(refs: Table, preds: Table) -> Alignment:
    """Match by normalised name; every reference stays in, whatever happened to its prediction."""
    names = tuple(refs.records)
    missing = tuple(n for n in names if n not in preds.records)
    failed = tuple(n for n in names if n in preds.records and preds.records[n].status == "error")
    extra = tuple(n for n in preds.records if n not in refs.records)
    return Alignment(names=names, missing=missing, failed=failed, extra=extra)


def alignment_warnings(
    alignment: Alignment, preds: Table, consequence: str = "scored as wrong in strict mode"
) -> list[str]:
    """Human-readable lines for the report about what did not match."""
    out = []
    if alignment.missing:
        out.append(
            f"{len(alignment.missing)} reference sample(s) have no prediction ({consequence}): "
            f"{_list(list(alignment.missing))}"
        )
    if alignment.failed:
        errors = [f"{n}: {preds.records[n].error or 'no message'}" for n in alignment.failed]
        out.append(
            f"{len(alignment.failed)} prediction(s) have status 'error' (scored as missing): "
            f"{_list(errors, 5)}"
        )
    if alignment.extra:
        out.append(
            f"{len(alignment.extra)} prediction(s) name no reference sample (ignored): "
            f"{_list(list(alignment.extra))}"
        )
    return out
