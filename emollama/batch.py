"""Batch analysis over a CSV manifest into a resumable JSONL file.

Each finished clip is appended as one JSON line and flushed to disk (``fsync``) before the next
clip starts, so a crash or Ctrl-C loses at most the clip in progress. On restart, clips whose
``path`` already has a line are skipped; a half-written last line from a crash is cut off first.
A clip that fails gets a line with ``status: "error"`` and the one-line reason, and the batch
goes on; ``retry_failed`` re-runs those.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from emollama.errors import EmollamaError, ManifestError, unexpected_error_message
from emollama.files import atomic_write_bytes
from emollama.manifest import read_table


@dataclass(frozen=True)
class ManifestRow:
    key: str  # the manifest's `path` value, as written (resume key)
    path: Path  # resolved against the manifest's folder
    subtitle: str | None


def read_manifest(manifest: str | Path) -> list[ManifestRow]:
    """Rows of a CSV with a ``path`` column (relative to the CSV) and an optional ``subtitle``."""
    table = read_table(manifest)
    m = table.path
    if "path" not in table.fields:
        raise ManifestError(f"manifest {m}: needs a 'path' column (found: {', '.join(table.fields) or 'none'})")
    rows = []
    for n, row in table.rows:
        if not row.get("path"):
            raise ManifestError(f"manifest {m}, line {n}: empty 'path'")
        rows.append(ManifestRow(row["path"], (m.parent / row["path"]).resolve(), row.get("subtitle") or None))
    if not rows:
        raise ManifestError(f"manifest {m}: no rows")
    resolved = [str(r.path) for r in rows]
    dupes = sorted({r.key for r in rows if resolved.count(str(r.path)) > 1})
    if dupes:
        raise ManifestError(f"manifest {m}: duplicate paths {', '.join(dupes[:5])}")
    return rows


def read_done(out: Path, retry_failed: bool = False) -> set[str]:
    """Keys already in ``out``; repairs a truncated last line and, if asked, drops error lines."""
    if not out.exists():
        return set()
    lines = out.read_bytes().split(b"\n")
    good: list[bytes] = []
    done: set[str] = set()
    changed = False
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            changed = True  # an interrupted write; the clip will be redone
            continue
        if retry_failed and rec.get("status") == "error":
            changed = True
            continue
        good.append(line)
        done.add(rec.get("key") or rec.get("path"))
    if changed:
        atomic_write_bytes(out, b"".join(g + b"\n" for g in good))
    return done


def run_batch(analyze_one: Callable[[ManifestRow], dict], rows: list[ManifestRow], out: str | Path, *,
              retry_failed: bool = False, on_item: Callable[[ManifestRow, dict], None] | None = None
              ) -> Iterator[tuple[ManifestRow, dict]]:
    """Analyse rows not yet in ``out``; yields ``(row, record)`` as each line is safely on disk."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = read_done(out, retry_failed)
    todo = [r for r in rows if r.key not in done]
    with open(out, "a", encoding="utf-8") as fh:
        for row in todo:
            try:
                record = analyze_one(row)
            except EmollamaError as exc:
                record = error_record(row, str(exc))
            except Exception as exc:  # noqa: BLE001 - record it and go on; a resume must not die here again
                record = error_record(row, unexpected_error_message(exc))
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            if on_item is not None:
                on_item(row, record)
            yield row, record


def ok_record(row: ManifestRow, result_json: dict) -> dict:
    return {"name": row.path.stem, "key": row.key, "path": str(row.path), "status": "ok",
            "label": result_json.get("label"), "reasoning": result_json.get("reasoning"),
            "error": None, "result": result_json}


def error_record(row: ManifestRow, message: str) -> dict:
    return {"name": row.path.stem, "key": row.key, "path": str(row.path), "status": "error",
            "label": None, "reasoning": None, "error": message, "result": None}
