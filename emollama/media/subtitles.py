"""Subtitles: ``--subtitle`` is either literal text or a .srt/.vtt/.txt file.

How the two are told apart (:func:`names_a_file`): a value is a file name when it ends in a
subtitle suffix (.srt, .vtt, .txt, and .ass/.ssa/.sub/.sbv, which are refused as unsupported), starts
with ``/``, ``./``, ``../`` or ``~``, or names anything that exists. Such a value must then be a
readable subtitle file — a missing file, a folder, a FIFO or a device is an error, never silently
used as the transcript text. Anything else is the transcript itself.

Timing lines, cue numbers, WebVTT headers and inline tags (<i>, {\\an8}) are dropped; the
remaining lines are joined into one transcript, which is what the words modality needs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emollama.errors import InputError, SubtitleError
from emollama.validate import check_input_file

SUBTITLE_SUFFIXES = {".srt", ".vtt", ".txt"}
#: Subtitle formats people pass that this reader does not parse: refused, not read as text.
UNSUPPORTED_SUFFIXES = {".ass", ".ssa", ".sub", ".sbv", ".idx", ".sup"}
_TIMING = re.compile(r"^\s*(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3}\s*-->\s*(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3}")
_TAG = re.compile(r"<[^>]+>|\{\\[^}]*\}")
_MAX_BYTES = 5_000_000


def resolve_subtitle(value: str | None) -> str | None:
    """Return transcript text for a ``--subtitle`` argument (path or literal), or None."""
    if value is None:
        return None
    if names_a_file(value):
        return read_subtitle_file(Path(value.strip()).expanduser())
    text = " ".join(value.split())
    return text or None


def names_a_file(value: str) -> bool:
    """Whether a ``--subtitle`` value is a file name rather than transcript text (rule in the module doc)."""
    v = value.strip()
    if not v or "\n" in v or len(v) > 4096:
        return False
    if Path(v).suffix.lower() in SUBTITLE_SUFFIXES | UNSUPPORTED_SUFFIXES:
        return True
    if v.startswith(("/", "./", "../", "~")):
        return True
    try:
        return os.path.lexists(os.path.expanduser(v))
    except (OSError, ValueError):
        return False


def _decode(raw: bytes) -> str | None:
    """UTF-16 (BOM), UTF-8, then GB18030 only if it yields mostly Chinese, then Windows-1252.

    GB18030 accepts almost any byte string, so a Latin-1 French subtitle would silently become
    Latin text sprinkled with CJK gibberish ("tr鑣 heureux"); real Chinese subtitles are mostly CJK,
    so GB18030 is accepted only when CJK characters are not swamped by Latin letters.
    """
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
        non_ascii = [c for c in text if ord(c) > 127]
        cjk = [c for c in non_ascii if "\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef"]
        latin = sum(c.isascii() and c.isalpha() for c in text)
        if non_ascii and len(cjk) / len(non_ascii) > 0.9 and len(cjk) >= 0.3 * latin:
            return text
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return None


def read_subtitle_file(path: Path) -> str:
    """Parse an SRT, WebVTT or plain-text subtitle file into one line of text."""
    if path.suffix.lower() in UNSUPPORTED_SUFFIXES:
        raise SubtitleError(f"subtitle file {path}: {path.suffix} subtitles are not supported; convert them to "
                            ".srt, .vtt or .txt")
    try:
        check_input_file(path, what="subtitle file", max_bytes=_MAX_BYTES, directory_hint="give a subtitle file")
    except InputError as exc:
        raise SubtitleError(str(exc)) from None
    raw = path.read_bytes()
    text = _decode(raw)
    if text is None:
        raise SubtitleError(f"subtitle file {path}: not UTF-8, UTF-16, GB18030 or Windows-1252 text")
    if "\x00" in text:
        raise SubtitleError(f"subtitle file {path}: looks binary, not a subtitle")
    lines = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.upper().startswith("WEBVTT") or s.isdigit() or _TIMING.match(s):
            continue
        if s.startswith(("NOTE", "STYLE", "REGION")) and path.suffix.lower() == ".vtt":
            continue
        s = _TAG.sub("", s).strip()
        if s:
            lines.append(s)
    transcript = " ".join(lines).strip()
    if not transcript:
        raise SubtitleError(f"subtitle file {path}: contains no subtitle text")
    return transcript
