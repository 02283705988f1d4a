"""Load and fault benchmark of ``emollama serve`` on loopback (a benchmark: it prints, it asserts nothing timed).

Three phases against one server it starts itself on 127.0.0.1:
1. bounded load: ``--clients`` concurrent clients each send ``--requests`` analyses of the clip;
   prints requests/s, p50/p95/p99 latency, errors (must be 0) and the peak RSS of the server
   with its workers (sampled from /proc every 0.2 s);
2. overload: more simultaneous clients than workers + queue: the extra ones must get 429 with
   Retry-After, and a request after the burst must succeed;
3. fault: a worker is killed (SIGKILL) mid-request: that request must get a 5xx with an error id,
   the worker must be replaced, and the following requests must succeed.

Usage: python benchmarks/bench_serve.py [--clients 8] [--requests 5] [--workers 1] [--max-queue 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut_happy.mp4"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total / 1024


class Server:
    def __init__(self, workers: int, max_queue: int, log: Path, extra: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "emollama", "serve", "--port", str(self.port), "--workers", str(workers),
               "--max-queue", str(max_queue), *extra]
        self.log = log
        self.process = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1"})
        self.peak_mb = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.process.pid))
            time.sleep(0.2)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/v1/health", timeout=10).json()

    def wait_ready(self, timeout_s: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited:\n{self.log.read_text()[-2000:]}")
            try:
                if self.health()["status"] == "ready":
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit("server not ready in time")

    def stop(self) -> None:
        self._stop.set()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def analyze(server: Server, clip: bytes, name: str) -> tuple[int, float, dict]:
    started = time.monotonic()
    try:
        r = httpx.post(f"{server.url}/v1/analyze", files={"file": (name, clip)}, timeout=600)
        body = r.json()
        return r.status_code, time.monotonic() - started, {**body, "_retry_after": r.headers.get("Retry-After")}
    except httpx.HTTPError as exc:
        return -1, time.monotonic() - started, {"error": repr(exc)}


def run_clients(server: Server, clip: bytes, clients: int, requests: int) -> list[tuple[int, float, dict]]:
    results: list[tuple[int, float, dict]] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        for j in range(requests):
            out = analyze(server, clip, f"client{i}-req{j}.mp4")
            with lock:
                results.append(out)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=5, help="requests per client in the load phase")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-queue", type=int, default=8)
    ap.add_argument("--clip", type=Path, default=EXAMPLE)
    ap.add_argument("--no-asr", action="store_true")
    ap.add_argument("--log", type=Path, default=Path("/tmp/bench_serve.log"))
    args = ap.parse_args()
    clip = args.clip.read_bytes()
    server = Server(args.workers, args.max_queue, args.log, ["--no-asr"] if args.no_asr else [])
    report: dict[str, object] = {"clients": args.clients, "requests_per_client": args.requests,
                                 "workers": args.workers, "max_queue": args.max_queue, "clip": args.clip.name,
                                 "cpu_count": os.cpu_count()}
    try:
        report["load_s"] = round(server.wait_ready(), 1)

        # 1. bounded load
        started = time.monotonic()
        results = run_clients(server, clip, args.clients, args.requests)
        wall = time.monotonic() - started
        ok = [lat for status, lat, _ in results if status == 200]
        errors = [(s, b.get("error")) for s, _, b in results if s != 200]
        report["load"] = {"requests": len(results), "ok": len(ok), "errors": len(errors),
                          "error_samples": errors[:3], "wall_s": round(wall, 1),
                          "requests_per_s": round(len(ok) / wall, 3),
                          "latency_s": {"p50": round(percentile(ok, 50), 2), "p95": round(percentile(ok, 95), 2),
                                        "p99": round(percentile(ok, 99), 2)} if ok else None}
        print(json.dumps({"phase": "load", **report["load"]}), flush=True)

        # 2. overload: everybody at once, more than workers + queue
        burst = args.workers + args.max_queue + 4
        results = run_clients(server, clip, burst, 1)
        statuses = sorted(s for s, _, _ in results)
        retry = [b["_retry_after"] for s, _, b in results if s == 429]
        after = analyze(server, clip, "after-burst.mp4")[0]
        report["overload"] = {"clients": burst, "ok": statuses.count(200), "rejected_429": statuses.count(429),
                              "other": [s for s in statuses if s not in (200, 429)],
                              "retry_after_s": sorted(set(retry)), "next_request": after}
        print(json.dumps({"phase": "overload", **report["overload"]}), flush=True)

        # 3. fault: kill the busy worker mid-request
        victim: list[tuple[int, float, dict]] = []
        before = {w["pid"] for w in server.health()["workers"]}
        t = threading.Thread(target=lambda: victim.append(analyze(server, clip, "victim.mp4")))
        t.start()
        busy: list[int] = []
        deadline = time.monotonic() + 60
        while not busy and time.monotonic() < deadline:
            busy = [w["pid"] for w in server.health()["workers"] if w["state"] == "busy"]
            time.sleep(0.05)
        if not busy:
            raise SystemExit("no worker became busy within 60 s")
        time.sleep(0.5)
        pid = busy[0]
        os.kill(pid, signal.SIGKILL)
        t.join()
        killed_at = time.monotonic()
        new_pid = None
        while new_pid is None and time.monotonic() - killed_at < 300:  # the replacement, ready
            ready = [w["pid"] for w in server.health()["workers"] if w["state"] in ("idle", "busy")]
            new_pid = next((p for p in ready if p not in before), None)
            time.sleep(0.25)
        replaced_in = time.monotonic() - killed_at
        following = [analyze(server, clip, f"following{i}.mp4")[0] for i in range(3)]
        status, _, body = victim[0]
        report["fault"] = {"killed_request_status": status, "message": body.get("error"),
                           "replacement_ready_s": round(replaced_in, 1), "following": following,
                           "replaced": new_pid is not None}
        print(json.dumps({"phase": "fault", **report["fault"]}), flush=True)
        report["peak_rss_mb"] = round(server.peak_mb)
    finally:
        server.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
