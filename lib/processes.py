"""Starting and stopping the project's own processes (tests and benchmarks use these)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def celery_worker_command(*, name: str, concurrency: int = 8, loglevel: str = "INFO") -> list[str]:
    """A worker as Stratus runs it: the threads pool, so that the execution environments and
    their Runtime API servers are shared by every task of the process."""
    return [
        sys.executable, "-m", "celery", "-A", "console", "worker",
        "-Q", "invocations,default", "--pool", "threads", "--concurrency", str(concurrency),
        "--loglevel", loglevel, "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def celery_beat_command(*, schedule: Path, loglevel: str = "INFO") -> list[str]:
    """The scheduler: the sweeper and the other periodic tasks. Run exactly one."""
    return [
        sys.executable, "-m", "celery", "-A", "console", "beat",
        "--schedule", str(schedule), "--loglevel", loglevel,
    ]  # fmt: skip


def free_port() -> int:
    """A TCP port on the loopback nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running(
    command: list[str], *, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` with its output in `log_path`; terminate it (then kill) on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
