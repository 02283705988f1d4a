"""The worker pool's fault handling and the API key, in-process with a light engine (tests/serve/engines.py).

These cases need a job that runs too long, an engine that raises, or models that fail to load;
the real analysis is covered by test_api.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from emollama.media.sniff import sniff_media
from emollama.serve.app import create_app
from emollama.serve.config import ServeConfig

ENGINE = "tests.serve.engines:ScriptedEngine"


@pytest.fixture
def png(tmp_path: Path) -> bytes:
    Image.new("RGB", (32, 32), (120, 90, 60)).save(tmp_path / "x.png")
    return (tmp_path / "x.png").read_bytes()


def client(tmp_path: Path, **options: object) -> TestClient:
    config = ServeConfig(engine_factory=ENGINE, tmp_dir=tmp_path, timeout_s=2.0, **options)  # type: ignore[arg-type]
    return TestClient(create_app(config), raise_server_exceptions=False)


def wait_ready(c: TestClient) -> dict:
    import time

    for _ in range(300):
        state = c.get("/v1/health").json()
        if state["status"] != "loading":
            return state
        time.sleep(0.1)
    raise TimeoutError(state)


def test_timeout_crash_and_recovery(tmp_path: Path, png: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with client(tmp_path) as c:
        assert wait_ready(c)["status"] == "ready"
        pid = c.get("/v1/health").json()["workers"][0]["pid"]

        slow = c.post("/v1/analyze", files={"file": ("sleep.png", png)})
        assert slow.status_code == 504 and "longer than the server's limit of 2 s" in slow.json()["error"]
        assert wait_ready(c)["workers"][0]["pid"] != pid  # the stuck worker was replaced

        crash = c.post("/v1/analyze", files={"file": ("crash.png", png)})
        body = crash.json()
        assert crash.status_code == 500 and body["error_id"] and body["error_id"] in body["error"]
        assert "RuntimeError" not in crash.text and "Traceback" not in crash.text

        ok = c.post("/v1/analyze", files={"file": ("fine.png", png)})
        assert ok.status_code == 200 and ok.json()["upload"]["name"] == "fine.png"
    assert not list(tmp_path.glob("emollama-serve-*"))


def test_models_that_fail_to_load_make_the_server_unready(tmp_path: Path, png: bytes) -> None:
    config = ServeConfig(engine_factory=ENGINE, tmp_dir=tmp_path)
    app = create_app(config)
    app.state.pool.spec = type(app.state.pool.spec)(ENGINE, {"fail_to_load": True})
    with TestClient(app) as c:
        state = wait_ready(c)
        assert state["status"] == "failed" and "test model folder is missing" in state["error"]
        assert c.get("/v1/health").status_code == 503
        r = c.post("/v1/analyze", files={"file": ("a.png", png)})
        assert r.status_code == 503 and "could not load its models" in r.json()["error"]


def test_api_key(tmp_path: Path, png: bytes) -> None:
    with client(tmp_path, api_key="s3cret") as c:
        wait_ready(c)
        assert c.get("/v1/health").status_code == 200  # open: load balancers poll it
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.post("/v1/analyze", files={"file": ("a.png", png)})
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        good = {"Authorization": "Bearer s3cret"}
        assert c.get("/v1/models", headers=good).status_code == 200
        assert c.post("/v1/analyze", files={"file": ("a.png", png)}, headers=good).status_code == 200
        assert c.get("/").status_code == 200  # the page itself; it asks for the key


@pytest.mark.parametrize(("head", "name"), [
    (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "quicktime"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "matroska"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
    (b"OggS\x00\x02\x00\x00", "ogg"),
])
def test_sniff_recognises_media(head: bytes, name: str) -> None:
    kind = sniff_media(head + bytes(64))
    assert kind is not None and kind.name == name


@pytest.mark.parametrize("head", [b"%PDF-1.7\n", b"PK\x03\x04", b"<!DOCTYPE html>", b"\x7fELF\x02\x01", b"ab"])
def test_sniff_refuses_other_files(head: bytes) -> None:
    assert sniff_media(head + bytes(64)) is None
