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

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(command: list[str], log_name: str) -> Iterator[subprocess.Popen[bytes]]:
    log_dir = BASE_DIR / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / log_name).open("wb") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_command(concurrency: int = 8) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "console", "worker",
        "-Q", "invocations,default", "--pool", "threads", "--concurrency", str(concurrency),
        "--loglevel", "WARNING", "-n", f"bench-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def web_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "console.wsgi",
        "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--threads", "8",
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
