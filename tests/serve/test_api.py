"""The REST API against a real server (tests/serve/conftest.py): answers, every error code, load, faults.

Every error answer is checked the same way: the status, a JSON body whose ``error`` is the
project's one-line message, and no traceback. The clips are generated here from the example.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.clips import EXAMPLE, example_audio, example_frames, write_video, write_wav

TIMEOUT = httpx.Timeout(180.0)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    frames = example_frames(40)
    audio = example_audio()
    image = d / "face.png"
    Image.fromarray(frames[30]).save(image)
    return {
        "image": image,
        "audio": write_wav(d / "speech.wav", audio[: 2 * 16000]),
        "video": write_video(d / "short.mp4", frames[20:40:2], fps=5, audio=audio[: 2 * 16000]),
        "long_audio": write_wav(d / "long.wav", np.zeros(40 * 16000, np.float32)),
    }


def post(server, files: dict | None = None, data: dict | None = None, stream: bool = False, **kw) -> httpx.Response:
    url = f"{server.url}/v1/analyze" + ("/stream" if stream else "")
    return httpx.post(url, files=files, data=data, timeout=TIMEOUT, **kw)


def upload(path: Path, name: str | None = None) -> dict:
    return {"file": (name or path.name, path.read_bytes())}


def assert_error(response: httpx.Response, status: int, fragment: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "status", "error_id"} and body["status"] == status
    assert fragment in body["error"], body
    assert "Traceback" not in response.text and "\n" not in body["error"]
    return body


def sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith(":")]
        if lines:
            name = next(ln[7:] for ln in lines if ln.startswith("event: "))
            data = json.loads("".join(ln[6:] for ln in lines if ln.startswith("data: ")))
            events.append((name, data))
    return events


def test_health_and_models(live_server) -> None:
    health = httpx.get(f"{live_server.url}/v1/health").json()
    assert health["status"] == "ready" and health["workers"][0]["state"] in ("idle", "busy")
    models = httpx.get(f"{live_server.url}/v1/models").json()
    assert models["default_tier"] == "clues" and "face" in models["tiers"]["clues"]["perception"]
    assert "merr9" in models["label_sets"] and models["limits"]["max_upload_mb"] == 2
    assert models["schema_version"] and models["emollama_version"]
    docs = httpx.get(f"{live_server.url}/openapi.json").json()
    assert {"/v1/analyze", "/v1/analyze/stream", "/v1/health", "/v1/models"} <= set(docs["paths"])


def test_analyze_answers_the_result_of_this_upload(live_server, media) -> None:
    r = post(live_server, upload(media["video"], "my clip.mp4"), {"labels": "mer6", "subtitle": "I am so happy!"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["schema_version"] and result["label_set"] == "mer6" and result["label"] in result["scores"]
    assert result["upload"] == {"name": "my clip.mp4", "bytes": media["video"].stat().st_size,
                                "sha256": hashlib.sha256(media["video"].read_bytes()).hexdigest()}
    assert result["media"]["path"] == "my clip.mp4" and result["media"]["kind"] == "video"
    assert result["clues"]["words"]["source"] == "subtitle" and "happy" in result["clues"]["words"]["text"]
    assert str(live_server.tmp) not in r.text  # the server's private paths never reach a client


def test_stream_reports_stages_then_the_result(live_server, media) -> None:
    r = post(live_server, upload(media["audio"]), stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    names = [name for name, _ in events]
    assert names[-1] == "result", events[-1]
    stages = [data["stage"] for name, data in events if name == "stage"]
    assert stages[0] == "decode" and "voice" in stages and stages[-1] == "fusion"
    result = events[-1][1]
    assert result["media"]["kind"] == "audio" and result["upload"]["name"] == "speech.wav"


def test_concurrent_requests_do_not_mix(live_server, media) -> None:
    answers: dict[str, httpx.Response] = {}

    def send(kind: str) -> None:
        answers[kind] = post(live_server, upload(media[kind]))

    threads = [threading.Thread(target=send, args=(k,)) for k in ("image", "audio")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for kind in ("image", "audio"):
        assert answers[kind].status_code == 200, answers[kind].text
        result = answers[kind].json()
        assert result["media"]["kind"] == kind
        assert result["upload"]["sha256"] == hashlib.sha256(media[kind].read_bytes()).hexdigest()


def test_a_full_server_answers_429_and_recovers(live_server, media) -> None:
    answers: list[httpx.Response] = []
    # The example clip (5.8 s): long enough that the first is still running when the third arrives.
    threads = [threading.Thread(target=lambda: answers.append(post(live_server, upload(EXAMPLE))))
               for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while live_server.health()["admitted"] < 2 and time.monotonic() < deadline:  # one running, one waiting
        time.sleep(0.05)
    busy = post(live_server, upload(media["image"]))
    assert_error(busy, 429, "busy")
    assert int(busy.headers["Retry-After"]) >= 1
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert post(live_server, upload(media["image"])).status_code == 200


def test_size_limits_are_checked_while_streaming(live_server, media) -> None:
    big = os.urandom(3_000_000)
    # Declared too large: refused from the header alone.
    assert_error(post(live_server, {"file": ("big.mp4", big)}), 413, "2 MB")

    # No Content-Length (chunked): refused once the limit is passed, before the body ends.
    boundary = "emollamatest"
    sent = [0]

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
               "Content-Type: video/mp4\r\n\r\n").encode()
        yield media["video"].read_bytes()[:4096]
        for _ in range(400):  # up to 20 MB if nobody stopped us
            sent[0] += 50_000
            yield b"\0" * 50_000
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        r = httpx.post(f"{live_server.url}/v1/analyze", content=body(), timeout=TIMEOUT,
                       headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert_error(r, 413, "larger than the server's limit")
    except (httpx.RemoteProtocolError, httpx.WriteError):
        pass  # the server answered and closed while we were still sending: also a refusal
    assert sent[0] < 12_000_000  # it stopped reading soon after the 2 MB limit, it did not take all 20 MB
    # Media longer than --max-duration (30 s) is refused from its header, before any analysis.
    assert_error(post(live_server, upload(media["long_audio"])), 413, "30")


def test_content_is_sniffed_not_trusted_from_the_name(live_server, media) -> None:
    assert_error(post(live_server, {"file": ("clip.mp4", b"%PDF-1.7\n" + os.urandom(4000))}), 415, "clip.mp4")
    assert_error(post(live_server, {"file": ("tiny.mp4", b"abc")}), 415, "not a video")
    r = httpx.post(f"{live_server.url}/v1/analyze", json={"file": "x"}, timeout=TIMEOUT)
    assert_error(r, 415, "multipart/form-data")
    # A real PNG named .mp4 is stored and read as an image.
    r = post(live_server, {"file": ("photo.mp4", media["image"].read_bytes())})
    assert r.status_code == 200 and r.json()["media"]["kind"] == "image"


@pytest.mark.parametrize(("data", "files", "fragment"), [
    ({"labels": "nope"}, None, "unknown label set"),
    ({"fps": "fast"}, None, "not a number"),
    ({"fps": "-2"}, None, "fps"),
    ({"tier": "emotion-llama"}, None, "not served here"),
    ({"colour": "red"}, None, "unknown form field 'colour'"),
    ({"subtitle": "hello"}, {"subtitle_file": ("s.srt", b"1\n00:00:00,000 --> 00:00:01,000\nhi\n")}, "not both"),
    ({}, {"subtitle_file": ("s.ass", b"[Script Info]")}, ".srt, .vtt or .txt"),
])
def test_bad_options_are_422(live_server, media, data, files, fragment) -> None:
    assert_error(post(live_server, {**upload(media["image"]), **(files or {})}, data), 422, fragment)


def test_missing_media_and_unknown_routes(live_server) -> None:
    assert_error(post(live_server, data={"labels": "mer6"}), 422, "'file' field")
    assert_error(httpx.get(f"{live_server.url}/v1/nothing"), 404, "Not Found")


def test_server_side_paths_stay_inside_the_allowed_root(live_server, media, tmp_path) -> None:
    root = live_server.root
    (root / "clips").mkdir(exist_ok=True)
    (root / "clips" / "face.png").write_bytes(media["image"].read_bytes())
    outside = tmp_path / "secret.png"
    outside.write_bytes(media["image"].read_bytes())
    link = root / "escape.png"
    if not link.exists():
        link.symlink_to(outside)
    r = post(live_server, data={"path": "clips/face.png"})
    assert r.status_code == 200 and r.json()["upload"]["name"] == "clips/face.png"
    assert_error(post(live_server, data={"path": "../secret.png"}), 403, "'..' is not allowed")
    assert_error(post(live_server, data={"path": "escape.png"}), 403, "outside")
    assert_error(post(live_server, data={"path": str(outside)}), 403, "outside")
    assert_error(post(live_server, data={"path": "clips/missing.png"}), 422, "clips/missing.png: no such file")
    assert_error(post(live_server, data={"path": "clips"}), 422, "is a directory")
    (root / "clips" / "notes.mp4").write_text("not media, whatever the name says\n" * 40)
    assert_error(post(live_server, data={"path": "clips/notes.mp4"}), 415, "clips/notes.mp4: not a video")
    assert_error(post(live_server, data={"path": "clips/" + "x" * 300 + ".mp4"}), 422, "longer than 255 bytes")
    assert_error(post(live_server, data={"path": "clips/a\nb.mp4"}), 422, "no such file")
    for bad in ("clips/missing.png", "clips/" + "x" * 300 + ".mp4", "../x", "escape.png"):
        assert str(root) not in post(live_server, data={"path": bad}).text


def test_a_worker_killed_mid_request_is_replaced(live_server, media) -> None:
    pid = live_server.health()["workers"][0]["pid"]
    events: list[tuple[str, dict]] = []

    def stream() -> None:
        with httpx.stream("POST", f"{live_server.url}/v1/analyze/stream", files=upload(EXAMPLE),
                          timeout=TIMEOUT) as r:
            events.extend(sse(r.read().decode()))

    t = threading.Thread(target=stream)
    t.start()
    deadline = time.monotonic() + 30
    while live_server.health()["workers"][0]["state"] != "busy" and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    name, data = events[-1]
    assert name == "error" and data["status"] == 500 and data["error_id"] in data["error"], events[-1]
    assert data["error_id"] in live_server.log.read_text()  # the log explains what the client was told
    state = live_server.wait_ready()
    assert state["workers"][0]["pid"] != pid
    assert post(live_server, upload(media["image"])).status_code == 200


def test_no_request_folder_is_left_behind(live_server) -> None:
    deadline = time.monotonic() + 10
    while live_server.leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_server.leftovers() == []
    assert "Traceback" not in live_server.log.read_text()
