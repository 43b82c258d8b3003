"""Starts the real stack's processes (web and worker) on loopback for a benchmark run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from lib import processes

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    command: list[str], log_name: str, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log_path = BASE_DIR / "var" / "bench" / log_name
    with processes.running(command, log_path=log_path, env=env) as process:
        yield process


def worker_command(concurrency: int = 8) -> list[str]:
    return processes.celery_worker_command(
        name=f"bench-{os.getpid()}", concurrency=concurrency, loglevel="WARNING"
    )


def web_command(port: int, threads: int = 8) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "console.wsgi",
        "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--threads", str(threads),
        "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip


def wait_for_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")
