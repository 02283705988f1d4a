"""``emollama serve``: the REST API and the web page (see docs/serve.md)."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path

import typer
from rich.console import Console

from emollama.errors import InputError
from emollama.media.decode import DEFAULT_MAX_DURATION_S

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    tier: list[str] = typer.Option(["clues"], "--tier", help="Tier the workers load: 'clues' or 'emotion-llama'; "
                                   "repeat to serve both (the first is the default)."),
    model: Path | None = typer.Option(None, "--model", help="With --tier emotion-llama: the model folder "
                                      "(default: the shipped emotion-llama-mini)."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (each loads the models: ~2 GB each)."),
    max_queue: int = typer.Option(8, "--max-queue", help="Requests that may wait; more get 429 + Retry-After."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds one request may run before it is stopped (504)."),
    max_upload_mb: float = typer.Option(200.0, "--max-upload-mb", help="Largest upload in MB (413 beyond it)."),
    max_duration: float = typer.Option(DEFAULT_MAX_DURATION_S, "--max-duration",
                                       help="Longest media in seconds (413 beyond it)."),
    allow_root: Path | None = typer.Option(None, "--allow-root", help="Let requests name files under this folder "
                                           "(form field 'path') instead of uploading them. Off by default."),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="Name of an environment variable holding "
                                           "an API key; the API then needs 'Authorization: Bearer <key>'."),
    no_asr: bool = typer.Option(False, "--no-asr", help="Do not transcribe speech (requests may send a subtitle)."),
    fusion: str = typer.Option("learned", "--fusion", help="The clues tier's fusion: 'learned' or 'handset'."),
) -> None:
    """Serve the analysis over HTTP: a REST API (docs at /docs) and a web page at /."""
    from emollama.serve.config import ServeConfig

    config = ServeConfig(tiers=tuple(_check_tiers(tier)), model_dir=str(_check_model(model, tier)) if model else None,
                         fusion=_check_fusion(fusion), asr=not no_asr, workers=_positive(workers, "--workers"),
                         max_queue=_non_negative(max_queue, "--max-queue"),
                         timeout_s=_positive(timeout, "--timeout"),
                         max_upload_mb=_positive(max_upload_mb, "--max-upload-mb"),
                         max_duration_s=_check_duration(max_duration),
                         allow_root=_check_root(allow_root), api_key=_api_key(api_key_env))
    _check_port(host, port)
    if not _is_loopback(host):
        console.print(f"[bold yellow]warning:[/] listening on {host}: anyone who can reach this machine can use the "
                      "server" + ("" if config.api_key else " - there is no authentication (see --api-key-env)"),
                      highlight=False)
    import uvicorn

    from emollama.serve.app import create_app

    console.print(f"emollama serve: http://{_url_host(host)}:{port}/ (API docs at /docs); loading "
                  f"{config.workers} worker(s) with tier(s) {', '.join(config.tiers)} ...", highlight=False)
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", timeout_graceful_shutdown=10)


def _check_tiers(tiers: list[str]) -> list[str]:
    from emollama.serve.engine import SERVED_TIERS

    seen: list[str] = []
    for t in tiers:
        if t not in SERVED_TIERS:
            raise InputError(f"--tier {t!r}: choose from {', '.join(SERVED_TIERS)}")
        if t not in seen:
            seen.append(t)
    return seen


def _check_model(model: Path, tiers: list[str]) -> Path:
    if "emotion-llama" not in tiers:
        raise InputError("--model is the emotion-llama tier's folder; add --tier emotion-llama")
    if not (model / "config.json").is_file():
        raise InputError(f"--model {model}: not a model folder (no config.json in it)")
    return model.resolve()


def _check_fusion(fusion: str) -> str:
    from emollama.recognize.clues import check_fusion

    return check_fusion(fusion, "--fusion")


def _positive(value: float, what: str) -> float:
    if not value > 0:
        raise InputError(f"{what} must be above 0 (got {value})")
    return value


def _non_negative(value: int, what: str) -> int:
    if value < 0:
        raise InputError(f"{what} must be 0 or more (got {value})")
    return value


def _check_duration(value: float) -> float:
    from emollama.media.decode import check_max_duration

    check_max_duration(value)
    return value


def _check_root(root: Path | None) -> Path | None:
    if root is None:
        return None
    if not root.expanduser().is_dir():
        raise InputError(f"--allow-root {root}: not a folder")
    return root.expanduser().resolve()


def _api_key(var: str | None) -> str | None:
    if var is None:
        return None
    key = os.environ.get(var, "").strip()
    if not key:
        raise InputError(f"--api-key-env {var}: that environment variable is not set or empty")
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _check_port(host: str, port: int) -> None:
    """Refuse a bad or busy port in one line, before minutes of model loading."""
    if not 0 < port < 65536:
        raise InputError(f"--port {port}: choose a port between 1 and 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except socket.gaierror:
        raise InputError(f"--host {host}: not an address of this machine") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"--port {port}: already in use on {host}; choose another port") from None
        raise InputError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
