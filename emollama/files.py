"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never a torn one.

Why one helper: results, MERR records, the LLM cache, joined model weights and training
checkpoints are all written while other processes may read them or while the user may press
Ctrl-C. Each goes to a uniquely named temporary file in the destination folder (so two writers
never share a temporary name and the final rename stays on one file system), is flushed to disk,
then renamed over the destination with :func:`os.replace`. On any error, Ctrl-C included, the
temporary file is removed and the destination is untouched. The new file gets the permissions
an ordinary ``open(path, "w")`` would give it (``0o666`` less the umask), not ``mkstemp``'s private
``0o600``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it replaces ``path``.

    For writers that want a file name rather than a handle (``torch.save``, ``save_file``,
    ``fig.savefig``). The parent folder is created when missing.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer may not have synced: do it before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (reading it means setting it, so it is put straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_npz(path: str | Path, **arrays: object) -> None:
    """Write numpy arrays as one ``.npz`` atomically (a killed run never leaves a half-written cache)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


#: Bytes read from the end of a weights file by :func:`file_fingerprint`.
FINGERPRINT_TAIL = 64 * 1024


def file_fingerprint(path: str | Path) -> bytes:
    """Name, size and a hash of the last 64 KiB of a (large) weights file.

    Cheap, and different for two trainings of one architecture (their headers match, their tensor
    bytes do not): what the feature store's encoder identity and the GGUF conversion cache key on.
    """
    import hashlib

    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - FINGERPRINT_TAIL))
        tail = fh.read(FINGERPRINT_TAIL)
    return f"{path.name}:{size}:".encode() + hashlib.sha256(tail).digest()
