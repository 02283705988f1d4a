"""The bad-input corpus (tests/test_bad_inputs.py) sent to ``POST /v1/analyze`` — plus what only a server sees.

Each case must be answered with the right status and a JSON body holding the project's one-line
message (never a traceback, never a server path), quickly, and leave no request folder behind; the
server must stay healthy afterwards. Cases that are fine input with odd parts (a UTF-16 subtitle,
a hostile file name) must be analysed, with the name made safe.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.clips import EXAMPLE, write_long_sparse_video
from tests.serve.test_api import assert_error

TIMEOUT = httpx.Timeout(60.0)
SRT = "1\n00:00:00,000 --> 00:00:02,000\n{}\n"


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (200, 180, 160)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


def _garbled_mp4() -> bytes:
    """The example with its media data overwritten: the header probes fine, decoding fails in the worker."""
    import random

    data = EXAMPLE.read_bytes()
    start, moov = data.find(b"mdat") + 2000, data.find(b"moov") - 4
    noise = random.Random(0).randbytes(moov - start)
    return data[:start] + noise + data[moov:]

# name -> (files, data, status, fragment of the message)
CASES: dict[str, tuple[dict, dict, int, str]] = {
    "empty-file": ({"file": ("empty.mp4", b"")}, {}, 422, "empty"),
    "random-bytes": ({"file": ("noise.mp4", os.urandom(4096))}, {}, 415, "not a video"),
    "text-renamed-mp4": ({"file": ("notes.mp4", b"hello, this is text\n" * 50)}, {}, 415, "not a video"),
    "truncated-mp4": ({"file": ("cut.mp4", EXAMPLE.read_bytes()[:3000])}, {}, 422, "cut.mp4: cannot decode"),
    "truncated-png": ({"file": ("cut.png", PNG[: len(PNG) // 2])}, {}, 422, "cut.png: not a readable image"),
    # Fails inside the worker, whose message names the file it read: the answer must name the upload.
    "garbled-mp4": ({"file": ("garbled.mp4", _garbled_mp4())}, {}, 422, "garbled.mp4: cannot decode"),
    "html-page": ({"file": ("index.mp4", b"<!DOCTYPE html><html>" + b" " * 600)}, {}, 415, "not a video"),
    "subtitle-binary": ({"file": ("a.png", PNG), "subtitle_file": ("s.srt", b"\x00\x01" * 300)}, {}, 422,
                        "looks binary"),
    "subtitle-ass": ({"file": ("a.png", PNG), "subtitle_file": ("s.ass", b"[Script Info]\n")}, {}, 422,
                     ".srt, .vtt or .txt"),
    "subtitle-text-over-limit": ({"file": ("a.png", PNG)}, {"subtitle": "word " * 30_000}, 413, "100,000"),
    "duplicate-field": ({"file": ("a.png", PNG)}, {"labels": ["mer6", "merr9"]}, 422, "sent twice"),
    "bad-fps": ({"file": ("a.png", PNG)}, {"fps": "nan"}, 422, "fps"),
    "bad-label-set": ({"file": ("a.png", PNG)}, {"labels": "plutchik"}, 422, "unknown label set"),
    "file-and-path": ({"file": ("a.png", PNG)}, {"path": "x.png"}, 422, "not both"),
    "path-to-dev-zero": ({}, {"path": "/dev/zero"}, 403, "outside"),
    "path-traversal": ({}, {"path": "../../../../etc/passwd"}, 403, "'..' is not allowed"),
}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_long_sparse_video(tmp_path_factory.mktemp("long") / "long.mkv", hours=2.0).read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_upload_is_refused_in_one_line(live_server, case: str) -> None:
    files, data, status, fragment = CASES[case]
    started = time.monotonic()
    r = httpx.post(f"{live_server.url}/v1/analyze", files=files or None, data=data or None, timeout=TIMEOUT)
    assert_error(r, status, fragment)
    assert time.monotonic() - started < 30
    assert str(live_server.tmp) not in r.text and str(live_server.root) not in r.text


def test_two_hours_of_media_are_refused_from_the_header(live_server, long_video: bytes) -> None:
    started = time.monotonic()
    r = httpx.post(f"{live_server.url}/v1/analyze", files={"file": ("long.mkv", long_video)}, timeout=TIMEOUT)
    assert_error(r, 413, "30")
    assert time.monotonic() - started < 10


def test_odd_but_valid_uploads_are_analysed_with_a_safe_name(live_server) -> None:
    hostile = "../../etc/" + "x" * 300 + "\r\nX-Injected: 1.png"
    subtitle = SRT.format("我今天非常高兴").encode("utf-16")  # UTF-16 with BOM
    r = httpx.post(f"{live_server.url}/v1/analyze", timeout=TIMEOUT,
                   files={"file": (hostile, PNG), "subtitle_file": ("zh.srt", subtitle)})
    assert r.status_code == 200, r.text
    result = r.json()
    name = result["upload"]["name"]
    assert "/" not in name and "\r" not in name and "\n" not in name and len(name) <= 200
    assert result["clues"]["words"]["text"] == "我今天非常高兴"


def test_a_client_that_hangs_up_mid_upload_leaves_nothing(live_server) -> None:
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(live_server.url)
    head = (b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1000000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"a.mp4\"\r\n\r\n")
    with socket.create_connection((url.hostname, url.port)) as s:
        s.sendall(head + EXAMPLE.read_bytes()[:20_000])
        deadline = time.monotonic() + 10
        while not live_server.leftovers() and time.monotonic() < deadline:  # the request's folder exists
            time.sleep(0.05)
        assert live_server.leftovers()
    deadline = time.monotonic() + 10
    while live_server.leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_server.leftovers() == []


def test_the_server_is_healthy_after_the_corpus(live_server) -> None:
    assert live_server.health()["status"] == "ready"
    deadline = time.monotonic() + 10
    while live_server.leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_server.leftovers() == []
