"""Fixtures for the MERR tests: annotated records (shared) and a loopback chat server."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from emollama.merr.inputs import ClipItem
from emollama.merr.runner import RunConfig, run_annotation
from tests.clips import EXAMPLE, write_video


class ChatServer:
    """OpenAI-compatible server on 127.0.0.1; ``reply`` decides each answer from the request body.

    ``reply`` returns text (a completion), ``("sleep", s)`` (answer after ``s`` seconds) or
    ``("garbage", None)`` (a 200 response that is not JSON).
    """

    def __init__(self) -> None:
        self.reply: Callable[[dict], object] = lambda body: "ok"
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                answer = server.reply(body)
                if isinstance(answer, tuple) and answer[0] == "sleep":
                    time.sleep(float(answer[1]))
                    answer = "late"
                if isinstance(answer, tuple) and answer[0] == "garbage":
                    payload = b"Internal proxy page <html>"
                else:
                    payload = json.dumps({"model": "merr-test-llm", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": str(answer)}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    srv = ChatServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="session")
def tiny_clips(tmp_path_factory) -> dict[str, Path]:
    """A faceless video with a tone, and a silent grey one: edge cases for every coarse field."""
    d = tmp_path_factory.mktemp("merr_media")
    t = np.arange(16000) / 16000
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return {"noface_tone": write_video(d / "noface_tone.mp4", seconds=1.0, audio=tone),
            "grey": write_video(d / "grey.mp4", seconds=0.5)}


@pytest.fixture(scope="session")
def annotated(perceiver, tiny_clips, tmp_path_factory) -> Path:
    """One offline run over the example clip (ground truth 'happy') and the tiny clips."""
    out = tmp_path_factory.mktemp("merr_out")
    items = [ClipItem("astronaut_happy", EXAMPLE, None, "happy", "Happy"),
             ClipItem("noface_tone", tiny_clips["noface_tone"]),
             ClipItem("grey", tiny_clips["grey"], None, "sad", "sad")]
    stats = run_annotation(items, out, RunConfig(), perceiver=perceiver)
    assert stats["annotated"] == 3, stats
    return out
