"""Receive one multipart upload into a private folder, with every limit checked while it streams in.

Why not FastAPI's ``UploadFile``: it spools the whole body before the handler runs, so an
oversized or non-media upload would be read to the end before it could be refused. Here the body
is parsed chunk by chunk: the size limit ends the request the moment it is passed (413), the
first bytes of the media decide whether it is media at all (415, :mod:`emollama.media.sniff`), and
text fields are bounded. The file is stored under its sniffed kind (``media.mp4``, ``media.jpg``),
never under the client's name, which is kept only for display.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from emollama.media.sniff import SNIFF_BYTES, MediaType, sniff_media
from emollama.media.subtitles import SUBTITLE_SUFFIXES
from emollama.serve.errors import ApiError

__all__ = ["FIELD_LIMIT_CHARS", "TEXT_FIELDS", "Upload", "receive_upload"]

#: The form's text fields; anything else is refused (a typo should not be silently ignored).
TEXT_FIELDS = ("subtitle", "labels", "fps", "tier", "path")
#: The form's file fields: the media, and an optional subtitle file (.srt/.vtt/.txt).
FILE_FIELDS = ("file", "subtitle_file")
#: Longest text field accepted; the words stage reads at most 5,000 characters of a transcript anyway.
FIELD_LIMIT_CHARS = 100_000
#: Room for the form's own headers and text fields on top of the media limit.
_FORM_SLACK_BYTES = 2 * FIELD_LIMIT_CHARS * 4 + 64_000
_SUBTITLE_LIMIT_BYTES = 5_000_000
# Control characters (C0, C1), line/paragraph separators and bidi overrides: a shown name must not
# reorder or break the text around it.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069/\\]")
#: A body that sends nothing for this long, or less than MIN_RATE after the grace period, is cut
#: off (408): otherwise a few connections trickling bytes would hold every admission slot.
IDLE_TIMEOUT_S = 30.0
MIN_RATE_BYTES_S = 32_000
_RATE_GRACE_S = 30.0


@dataclass
class Upload:
    """What a request sent: the stored media (if any), its facts, and the text fields."""

    folder: Path
    fields: dict[str, str] = field(default_factory=dict)
    media: Path | None = None
    media_type: MediaType | None = None
    name: str = ""
    sha256: str = ""
    bytes: int = 0
    subtitle_file: Path | None = None

    def describe(self) -> dict[str, object]:
        """The ``upload`` block of an answer: the client can tell its own upload's answer apart."""
        return {"name": self.name, "sha256": self.sha256, "bytes": self.bytes}


def display_name(filename: str) -> str:
    """The client's file name, safe to show and log: its last component, no control characters, bounded."""
    base = re.split(r"[/\\]", filename)[-1]
    base = _UNSAFE.sub("_", base).strip() or "upload"
    return base if len(base) <= 200 else base[:120] + "…" + base[-40:]


class _Part:
    """One part being received: a text field (bytes kept in memory) or a file (streamed to disk)."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.header_field = b""
        self.header_value = b""
        self.name = ""
        self.filename: str | None = None
        self.text = bytearray()
        self.handle: BinaryIO | None = None
        self.path: Path | None = None
        self.size = 0
        self.head = bytearray()
        self.hash = hashlib.sha256()


class _FormReader:
    """The multipart callbacks: decide what each part is, store it, enforce the limits."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.upload = Upload(folder=folder)
        self.max_bytes = max_bytes
        self.part = _Part()
        self.seen: set[str] = set()

    # python-multipart calls these with (data, start, end) slices of the current chunk.
    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.part.header_field.lower()] = self.part.header_value
        self.part.header_field = self.part.header_value = b""

    def on_headers_finished(self) -> None:
        part = self.part
        _kind, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if part.name in self.seen:
            raise ApiError(422, f"the form field {part.name!r} was sent twice")
        self.seen.add(part.name)
        if filename is None:
            if part.name not in TEXT_FIELDS:
                raise ApiError(422, f"unknown form field {part.name!r}; the fields are: file, subtitle_file, "
                                    + ", ".join(TEXT_FIELDS))
            return
        part.filename = filename.decode("utf-8", "replace")
        if part.name == "file":
            part.path = self.upload.folder / "upload.part"
        elif part.name == "subtitle_file":
            suffix = Path(display_name(part.filename)).suffix.lower()
            if suffix not in SUBTITLE_SUFFIXES:
                raise ApiError(422, "subtitle_file: send a .srt, .vtt or .txt file")
            part.path = self.upload.folder / f"subtitle{suffix}"
        else:
            raise ApiError(422, f"the form field {part.name!r} takes text, not a file")
        part.handle = part.path.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        chunk = data[start:end]
        part.size += len(chunk)
        if part.handle is None:
            if part.size > FIELD_LIMIT_CHARS * 4:
                raise ApiError(413, f"the form field {part.name!r} is longer than {FIELD_LIMIT_CHARS:,} characters")
            part.text += chunk
            return
        if part.name == "file":
            if part.size > self.max_bytes:
                raise ApiError(413, f"the upload is larger than the server's limit of {self.max_bytes / 1e6:g} MB")
            if len(part.head) < SNIFF_BYTES:
                part.head += chunk[:SNIFF_BYTES - len(part.head)]
                if len(part.head) >= SNIFF_BYTES:
                    self._sniff(part)
            part.hash.update(chunk)
        elif part.size > _SUBTITLE_LIMIT_BYTES:
            raise ApiError(413, f"subtitle_file is larger than {_SUBTITLE_LIMIT_BYTES / 1e6:g} MB")
        part.handle.write(chunk)

    def _sniff(self, part: _Part) -> None:
        kind = sniff_media(bytes(part.head))
        if kind is None:
            raise ApiError(415, f"{display_name(part.filename or '')}: not a video, audio or image file this "
                                "server can read (checked from its content, not its name)")
        self.upload.media_type = kind

    def on_part_end(self) -> None:
        part = self.part
        if part.handle is None:
            text = bytes(part.text).decode("utf-8", "replace")
            if len(text) > FIELD_LIMIT_CHARS:
                raise ApiError(413, f"the form field {part.name!r} is longer than {FIELD_LIMIT_CHARS:,} characters")
            self.upload.fields[part.name] = text
            return
        part.handle.close()
        part.handle = None
        assert part.path is not None
        if part.name == "subtitle_file":
            if part.size == 0:
                raise ApiError(422, "subtitle_file is empty")
            self.upload.subtitle_file = part.path
            return
        if part.size == 0:
            raise ApiError(422, f"{display_name(part.filename or '')}: the uploaded file is empty (0 bytes)")
        if self.upload.media_type is None:
            self._sniff(part)
        kind = self.upload.media_type
        assert kind is not None
        stored = part.path.with_name("media" + kind.suffix)
        part.path.rename(stored)
        self.upload.media = stored
        self.upload.name = display_name(part.filename or "")
        self.upload.sha256 = part.hash.hexdigest()
        self.upload.bytes = part.size

    def close(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()


async def receive_upload(content_type: str | None, content_length: str | None, body: AsyncIterator[bytes],
                         folder: Path, max_bytes: int) -> Upload:
    """Parse a ``multipart/form-data`` body into ``folder``; raise :class:`ApiError` at the first broken limit.

    ``folder`` must exist and belong to this request alone; the caller removes it afterwards, also
    when this raises.
    """
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind == b"application/x-www-form-urlencoded":  # text fields only, e.g. curl -d path=clips/a.mp4
        return await _url_encoded(body, folder)
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(415, "send the media as multipart/form-data with a 'file' field "
                            "(curl -F file=@clip.mp4 ...)")
    limit = max_bytes + _FORM_SLACK_BYTES
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise ApiError(400, "the Content-Length header is not a number") from None
        if declared > limit:
            raise ApiError(413, f"the upload is larger than the server's limit of {max_bytes / 1e6:g} MB")
    reader = _FormReader(folder, max_bytes)
    callbacks = {name: getattr(reader, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in _paced(body):
            received += len(chunk)
            if received > limit:
                raise ApiError(413, f"the upload is larger than the server's limit of {max_bytes / 1e6:g} MB")
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        raise
    except OSError as exc:
        raise ApiError(500, f"the server could not store the upload ({exc.strerror})") from None
    except Exception as exc:  # python-multipart's own errors: a malformed body
        raise ApiError(400, f"the multipart body is malformed ({type(exc).__name__})") from None
    finally:
        reader.close()
    return reader.upload


async def _paced(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``body``'s chunks, or 408 when the client stalls or trickles (see :data:`IDLE_TIMEOUT_S`)."""
    import asyncio
    import time

    started, received = time.monotonic(), 0
    iterator = body.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(iterator.__anext__(), timeout=IDLE_TIMEOUT_S)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ApiError(408, f"the upload stalled: nothing arrived for {IDLE_TIMEOUT_S:g} s") from None
        received += len(chunk)
        elapsed = time.monotonic() - started
        if elapsed > _RATE_GRACE_S and received < MIN_RATE_BYTES_S * elapsed:
            raise ApiError(408, f"the upload is too slow (under {MIN_RATE_BYTES_S // 1000} kB/s); send it from a "
                                "faster connection")
        yield chunk


async def _url_encoded(body: AsyncIterator[bytes], folder: Path) -> Upload:
    """A form of text fields only (no media: the request names a server-side path), bounded like the rest."""
    from urllib.parse import parse_qsl

    limit = 4 * FIELD_LIMIT_CHARS + 4096  # one subtitle's worth, percent-encoded, plus the short fields
    raw = bytearray()
    async for chunk in _paced(body):
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, f"the form is longer than {limit:,} bytes")
    upload = Upload(folder=folder)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw),
                          max_num_fields=len(TEXT_FIELDS))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "the url-encoded form is malformed") from None
    for name, value in pairs:
        if name not in TEXT_FIELDS:
            raise ApiError(422, f"unknown form field {name!r}; the fields are: file, subtitle_file, "
                                + ", ".join(TEXT_FIELDS))
        if name in upload.fields:
            raise ApiError(422, f"the form field {name!r} was sent twice")
        upload.fields[name] = value
    return upload
