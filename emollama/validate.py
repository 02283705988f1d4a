"""The input-validation layer: every path a user hands in is checked once, before any work.

Why one module: the CLI today, and the server later, take paths and text from people who make
typos and from strangers who send hostile input. Each check here raises one actionable
:class:`~emollama.errors.InputError` line and never touches the file's content beyond what it
must read to decide:

* input files — exists (a symlink loop and an over-long name are named as such), a regular file
  (a FIFO, a device or a socket would block or never end), readable, not empty, within a size limit;
* output files — never an input and never another output of the same command, the suffix the
  writer will really use, a parent that is a writable folder, and an existing file is replaced only
  when it is this command's own earlier output (``owned``), never a user's other file;
* output folders — not an existing file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from emollama.errors import InputError, PathOutsideRootError

__all__ = ["MAX_NAME_BYTES", "check_input_file", "check_inside_root", "check_output_dir", "check_output_file",
           "same_file", "shown_path"]

#: Longest file name (one path component) most file systems accept.
MAX_NAME_BYTES = 255

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_names(p: Path, what: str) -> None:
    for part in p.parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise InputError(f"{what} {str(p)[:60]}…: a name in the path is longer than {MAX_NAME_BYTES} bytes")


def _stat(p: Path, what: str) -> os.stat_result | None:
    """``stat`` that turns every failure but "missing" into one line (None when missing)."""
    label = f"{what} {p}".strip()
    try:
        return p.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{label}: is a symbolic link loop") from None
        if exc.errno == errno.ENOTDIR:
            return None
        raise InputError(f"{label}: cannot be read ({exc.strerror})") from None


def check_input_file(path: str | Path, *, what: str = "", max_bytes: int | None = None,
                     directory_hint: str = "give a file") -> Path:
    """The path of a readable, non-empty regular file, or one :class:`InputError` line saying what is wrong.

    ``what`` prefixes the messages (e.g. "subtitle file"); without it they start with the path.
    """
    p = Path(path).expanduser()
    label = f"{what} {p}".strip()
    _check_names(p, what or "path")
    st = _stat(p, what)
    if st is None:
        raise InputError(f"{label}: no such file")
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{label}: is a directory; {directory_hint}")
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise InputError(f"{label}: is {kind}, not a regular file; save the data to a file and pass that")
    if not os.access(p, os.R_OK):
        raise InputError(f"{label}: permission denied (cannot read it)")
    if st.st_size == 0:
        raise InputError(f"{label}: file is empty (0 bytes)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise InputError(f"{label}: {st.st_size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    return p


def shown_path(value: str) -> str:
    """A client-given path as it may appear in a message or an answer: as given if printable and short."""
    return value if value.isprintable() and len(value) <= 200 else repr(value)[:200]


def check_inside_root(root: Path, value: str, *, max_bytes: int | None = None) -> Path:
    """A path a remote client named, resolved inside ``root`` and checked like any input file.

    Why so strict: the server's optional server-side paths are read on behalf of whoever can reach
    it. ``..`` is refused outright (even where it would stay inside), and the path is compared after
    every symbolic link is followed, so a link inside ``root`` that points elsewhere is refused too
    (:class:`~emollama.errors.PathOutsideRootError`). Messages name the path as the client gave it
    (one line, at most 200 characters), never the root or where the path resolved to.
    """
    shown = shown_path(value)
    if not value or "\x00" in value or len(value) > 4096:
        raise InputError("path: give a file name inside the server's allowed folder")
    given = Path(value)
    if ".." in given.parts:
        raise PathOutsideRootError(f"path {shown}: '..' is not allowed; give a path inside the server's allowed "
                                   "folder")
    root_real = Path(os.path.realpath(root))
    real = Path(os.path.realpath(given if given.is_absolute() else root_real / given))
    if not real.is_relative_to(root_real):
        raise PathOutsideRootError(f"path {shown}: is outside the server's allowed folder")
    try:
        _check_names(given, "path")
        return check_input_file(real, directory_hint="give a media file", max_bytes=max_bytes)
    except InputError as exc:
        message = str(exc).replace(str(real), shown, 1).replace(str(root_real), "…")
        raise InputError(message if message.isprintable() else repr(message)[1:-1]) from None


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (existing ones compared by inode, others by resolved path)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b) or a.resolve() == b.resolve()
    except OSError:
        return False


def check_output_file(path: str | Path, *, what: str, suffixes: Iterable[str], inputs: Iterable[Path] = (),
                      others: Iterable[Path] = (), owned: Callable[[Path], bool] | None = None) -> Path:
    """A path this command may write, checked before any work; the parent folder is created if missing.

    ``inputs`` and ``others`` (the command's input files and its other outputs) must all differ
    from it. An existing file is accepted only when ``owned(path)`` says it is this command's own
    earlier output (a previous result, or a resumable batch file).
    """
    p = Path(path).expanduser()
    _check_names(p, what)
    st = _stat(p, what)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {p}: is a directory; give a file name")
    allowed = tuple(s.lower() for s in suffixes)
    if p.suffix.lower() not in allowed:
        raise InputError(f"{what} {p}: the file is written as {' or '.join(allowed)}; give a name ending in "
                         f"{allowed[0]}")
    for other in inputs:
        if same_file(p, Path(other)):
            raise InputError(f"{what} {p}: is also an input of this command; writing it would destroy the input")
    for other in others:
        if same_file(p, Path(other)):
            raise InputError(f"{what} {p}: is also another output of this command; give each output its own name")
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} {p}: exists and is not a regular file")
        if owned is None or not owned(p):
            raise InputError(f"{what} {p}: exists and was not written by this command; choose another name "
                             "or remove it first")
    _check_parent(p, what)
    return p


def check_output_dir(path: str | Path, *, what: str) -> Path:
    """A folder this command may create or add to: not an existing file, inside a writable folder."""
    p = Path(path).expanduser()
    _check_names(p, what)
    st = _stat(p, what)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {p}: is an existing file, not a folder; give a folder name")
    if st is None:
        _check_parent(p, what)
    elif not os.access(p, os.W_OK):
        raise InputError(f"{what} {p}: the folder is not writable")
    return p


def _check_parent(p: Path, what: str) -> None:
    parent = p.parent if str(p.parent) else Path(".")
    for ancestor in (parent, *parent.parents):
        st = _stat(ancestor, what)
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"{what} {p}: {ancestor} is a file, not a folder")
        break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} {p}: cannot create the folder {parent} ({exc.strerror})") from None
    if not os.access(parent, os.W_OK):
        raise InputError(f"{what} {p}: the folder {parent} is not writable")
