"""Batch analysis over a CSV manifest into a resumable JSONL file.

Each finished clip is appended as one JSON line and flushed to disk (``fsync``) before the next
clip starts, so a crash or Ctrl-C loses at most the clip in progress. On restart, clips whose
``path`` already has a line are skipped; a half-written last line from a crash is cut off first,
and any other content that is not this command's records is refused (never dropped). One run at
a time writes a given file (:func:`exclusive_output`).
A clip that fails gets a line with ``status: "error"`` and the one-line reason, and the batch
goes on; ``retry_failed`` re-runs those.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from emollama.errors import EmollamaError, InputError, ManifestError, unexpected_error_message
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
    """Keys already in ``out``; repairs a last line cut by a crash and, if asked, drops error lines.

    Only this command's own records may be in ``out``: any other line — a CSV, notes, the manifest
    itself — is an :class:`~emollama.errors.InputError` naming the line, and the file is left as it
    is. The one exception is a last line without its newline that is not valid JSON: that is the
    record a crash interrupted, and it is cut off so the clip is redone.
    """
    out = Path(out)
    if not out.exists():
        return set()
    lines = out.read_bytes().split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail is b"" when the file ends with a newline
    good: list[bytes] = []
    done: set[str] = set()
    changed = False
    for n, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        rec = _record(line)
        if rec is None:
            raise InputError(f"--out {out}, line {n}: not a record of `emollama analyze --manifest`; this file "
                             "is not an earlier --out of this command (choose another name)")
        if retry_failed and rec.get("status") == "error":
            changed = True
            continue
        good.append(line)
        done.add(rec.get("key") or rec.get("path"))
    if tail.strip():
        rec = _record(tail)
        if rec is not None and not (retry_failed and rec.get("status") == "error"):
            good.append(tail)
            done.add(rec.get("key") or rec.get("path"))
        changed = True  # cut off by a crash (or only its newline is missing): rewritten whole
    if changed:
        atomic_write_bytes(out, b"".join(g + b"\n" for g in good))
    return done


def _record(line: bytes) -> dict | None:
    """The batch record on ``line``, or None when the line is something else."""
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or rec.get("status") not in ("ok", "error") or not (rec.get("key") or rec.get("path")):
        return None
    return rec


@contextmanager
def exclusive_output(out: Path) -> Iterator[None]:
    """Hold a lock on ``out`` for the whole run: a second run on the same file is refused, not interleaved.

    The lock is an ``flock`` on a hidden file beside ``out`` (``.NAME.lock``, removed at the end);
    the kernel drops it when the process dies, so a crash never leaves a stale lock.
    """
    out = Path(out)
    lock_path = out.with_name(f".{out.name}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise InputError(f"--out {out}: another emollama run is writing this file now; wait for it to finish "
                         "or choose another --out") from None
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


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
