"""Shared fixtures: a loopback OpenAI-compatible server with scripted replies."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "evaluate"


class ScriptedServer:
    """Answers POSTs with the next scripted behaviour; the last one repeats.

    Behaviours: ("reply", text) → a chat completion; ("status", code) → that HTTP error;
    ("garbage", None) → a non-JSON 200 body; ("sleep", seconds) → wait, then reply "5"; a callable
    receives the request JSON and returns reply text.
    """

    def __init__(self) -> None:
        self.script: list[tuple[str, object]] = [("reply", "5")]
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.model_name = "judge-test-0001"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(
                        {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                    )
                    kind, value = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                if kind == "sleep":
                    time.sleep(float(value))  # type: ignore[arg-type]
                    kind, value = "reply", "5"
                if kind == "status":
                    self.send_response(int(value))  # type: ignore[arg-type]
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted failure"}')
                    return
                if kind == "garbage":
                    payload = b"<html>definitely not json</html>"
                else:
                    text = value(body) if callable(value) else str(value)
                    payload = json.dumps(
                        {
                            "id": "x",
                            "model": server.model_name,
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                        }
                    ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    try:
        yield srv
    finally:
        srv.close()
