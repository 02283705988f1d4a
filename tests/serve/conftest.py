"""A real ``emollama serve`` for the API and browser tests: one process for all of tests/serve.

It runs the real models (one worker, speech recognition off to save seconds per request; the
tests that need words send a subtitle), with small limits so every error path is cheap to reach:
a 2 MB upload limit, 30 s of media, a queue of one, and ``--allow-root`` on a test folder.
Each request's private folder lives under the session's ``tmp`` (the server's TMPDIR), so the
tests can check that nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    url: str
    tmp: Path
    root: Path
    log: Path
    process: subprocess.Popen

    def health(self) -> dict:
        return httpx.get(f"{self.url}/v1/health", timeout=10).json()

    def wait_ready(self, timeout_s: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                state = self.health()
                if state["status"] == "ready":
                    return state
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the server was not ready in {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.tmp.glob("emollama-serve-*"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")  # stopped after tests/serve: its memory is not held through the rest
def live_server(tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    base = tmp_path_factory.mktemp("serve")
    tmp, root = base / "tmp", base / "root"
    tmp.mkdir()
    root.mkdir()
    port = free_port()
    log = base / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "emollama", "serve", "--port", str(port), "--no-asr", "--max-queue", "1",
           "--max-upload-mb", "2", "--max-duration", "30", "--timeout", "120", "--allow-root", str(root)]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = LiveServer(url=f"http://127.0.0.1:{port}", tmp=tmp, root=root, log=log, process=process)
    try:
        server.wait_ready()
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
