"""What kind of media a file is, from its first bytes — never from its name.

Why: a server takes files from strangers, and a name says nothing about the content (``notes.mp4``
may be a PDF, ``clip.jpg`` an MP4). The signatures below are the container formats the decoders
(PyAV/FFmpeg for audio and video, Pillow for images) open; anything else is refused before any
decoder touches it. The suffix returned is the one the rest of the pipeline keys on (images are
read by Pillow, everything else by PyAV), so an upload is stored under its true kind.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SNIFF_BYTES", "MediaType", "sniff_media"]

#: How many leading bytes :func:`sniff_media` needs to decide.
SNIFF_BYTES = 512


@dataclass(frozen=True)
class MediaType:
    """A recognised container: a short name, the stored suffix, and image or not."""

    name: str
    suffix: str
    image: bool = False


def _riff(head: bytes) -> MediaType | None:
    form = head[8:12]
    return {b"WAVE": MediaType("wav", ".wav"), b"AVI ": MediaType("avi", ".avi"),
            b"WEBP": MediaType("webp", ".webp", True)}.get(form)


def _mpeg_audio(head: bytes) -> bool:
    """An MPEG audio frame header (MP3 without ID3, ADTS AAC): 11 sync bits and a valid layer."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    layer = (head[1] >> 1) & 0x3
    version = (head[1] >> 3) & 0x3
    return layer != 0 or version in (0, 2)  # layer 0 with version bits 00/10 is ADTS (AAC)


def sniff_media(head: bytes) -> MediaType | None:
    """The media type of a file that starts with ``head`` (its first :data:`SNIFF_BYTES`), or None."""
    if len(head) < 4:
        return None
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"avif", b"mif1"):
            return None  # still images in an ISO container: neither decoder here reads them
        return MediaType("quicktime", ".mov" if brand == b"qt  " else ".mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return MediaType("quicktime", ".mov")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MediaType("matroska", ".webm" if b"webm" in head[:SNIFF_BYTES] else ".mkv")
    if head.startswith(b"RIFF"):
        return _riff(head)
    if head.startswith(b"\xff\xd8\xff"):
        return MediaType("jpeg", ".jpg", True)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaType("png", ".png", True)
    if head.startswith((b"GIF87a", b"GIF89a")):
        return MediaType("gif", ".gif", True)
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\0\0\0\0":
        return MediaType("bmp", ".bmp", True)
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return MediaType("tiff", ".tif", True)
    if head.startswith(b"OggS"):
        return MediaType("ogg", ".ogg")
    if head.startswith(b"fLaC"):
        return MediaType("flac", ".flac")
    if head.startswith(b"ID3"):
        return MediaType("mp3", ".mp3")
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return MediaType("aiff", ".aiff")
    if head.startswith(b"#!AMR"):
        return MediaType("amr", ".amr")
    if head.startswith(b"caff"):
        return MediaType("caf", ".caf")
    if head.startswith(b"FLV\x01"):
        return MediaType("flv", ".flv")
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return MediaType("asf", ".wmv")
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return MediaType("mpeg-ps", ".mpg")
    if head[0] == 0x47 and len(head) > 188 and head[188] == 0x47:
        return MediaType("mpeg-ts", ".ts")
    if _mpeg_audio(head):
        return MediaType("mpeg-audio", ".mp3" if (head[1] >> 1) & 0x3 else ".aac")
    return None
