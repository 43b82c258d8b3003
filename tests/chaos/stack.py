"""A private Stratus stack for the chaos tests: its own Redis and Postgres servers (which the
tests kill and restart without touching anyone else's), Celery workers, the scheduler, and a
driver process that accepts invocations the way the web process does.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from lib.processes import BASE_DIR, celery_beat_command, celery_worker_command, free_port, running

START_TIMEOUT = 60.0
# What the stack's processes are told: fast sweeps and a short time to declare a worker dead,
# so a scenario ends in seconds.
FAST_FAULT_HANDLING = {
    "STRATUS_SWEEP_INTERVAL": "1",
    "STRATUS_ORPHAN_SWEEP_INTERVAL": "1",
    "STRATUS_WORKER_HEARTBEAT": "0.5",
    "STRATUS_WORKER_LOST_AFTER": "3",
    "STRATUS_REQUEUE_AFTER": "3",
    "STRATUS_WORKER_DRAIN_TIMEOUT": "20",
}


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _as_postgres_user() -> list[str]:
    # Postgres refuses to run as root; CI runs the suite as root.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise AssertionError(
            "the chaos tests need the Postgres server (apt-get install postgresql)"
        )
    return found[-1].parent


class RedisServer:
    """redis-server on a free port, keeping nothing on disk (a restart empties it)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise AssertionError("the chaos tests need redis-server (apt-get install redis-server)")
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(self._answers, timeout=START_TIMEOUT, what="the private Redis")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()


class PostgresServer:
    """A Postgres cluster of its own in a temporary folder, on a free port."""

    def __init__(self) -> None:
        # Not under pytest's temporary folders: the postgres user cannot enter those.
        self.root = Path(tempfile.mkdtemp(prefix="stratus-chaos-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.bin = _postgres_bin()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        subprocess.run(
            [*_as_postgres_user(), *argv], check=True, capture_output=True, cwd=self.root
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class Record:
    request_id: str
    status: str
    attempts: int
    invocation_type: str
    error_type: str
    error_message: str
    worker: str


class Stack:
    """Stratus processes on a private Postgres database and a private Redis."""

    def __init__(self, *, database_url: str, redis: RedisServer, workdir: Path) -> None:
        self.database_url = database_url
        self.redis = redis
        self.workdir = workdir
        self.runs_dir = workdir / "runs"
        self.runs_dir.mkdir(exist_ok=True)

    def env(self, **overrides: str) -> dict[str, str]:
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("STRATUS_", "CELERY_", "DATABASE_"))
        }
        return {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.redis.url,
            "STRATUS_VAR_DIR": str(self.workdir / "var"),
            "STRATUS_SANDBOX_BACKEND": "invocations.sandboxes.process.ProcessSandboxBackend",
            **FAST_FAULT_HANDLING,
            **overrides,
        }

    @contextmanager
    def worker(
        self, name: str, *, concurrency: int = 4, **env: str
    ) -> Iterator[subprocess.Popen[bytes]]:
        log_path = self.workdir / f"worker-{name}.log"
        command = celery_worker_command(name=name, concurrency=concurrency)
        with running(command, log_path=log_path, env=self.env(**env)) as process:
            wait_until(
                lambda: process.poll() is not None or " ready." in log_path.read_text(),
                timeout=START_TIMEOUT,
                what=f"worker {name}",
            )
            assert process.poll() is None, log_path.read_text()[-3000:]
            yield process

    @contextmanager
    def scheduler(self) -> Iterator[subprocess.Popen[bytes]]:
        command = celery_beat_command(schedule=self.workdir / "beat-schedule")
        with running(command, log_path=self.workdir / "beat.log", env=self.env()) as process:
            yield process

    @contextmanager
    def driver(self) -> Iterator[Driver]:
        with (self.workdir / "driver.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.driver"],
                cwd=BASE_DIR, env=self.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log,
            )  # fmt: skip
        try:
            driver = Driver(process)
            assert driver.read() == "ready"
            yield driver
        finally:
            process.kill()
            process.wait()

    def runtimes_of(self, worker_pid: int) -> list[int]:
        """Process ids of the function runtimes a worker started (process sandbox)."""
        pids = []
        for owner in (self.workdir / "var" / "sandboxes").glob("*/owner"):
            owner_pid, runtime_pid = (int(part) for part in owner.read_text().split())
            if owner_pid == worker_pid:
                pids.append(runtime_pid)
        return pids

    def event(self, **fields: object) -> str:
        return json.dumps({"runs_dir": str(self.runs_dir), **fields})

    def runs(self, request_id: str) -> int:
        path = self.runs_dir / request_id
        return len(path.read_text().splitlines()) if path.exists() else 0

    def records(self, function_name: str) -> dict[str, Record]:
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT request_id::text, status, attempts, invocation_type, error_type, "
                "error_message, worker FROM invocations_invocation WHERE function_name = %s",
                [function_name],
            ).fetchall()
        return {row[0]: Record(*row) for row in rows}

    def accepted_since(self, function_name: str, moment: datetime) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM invocations_invocation "
                "WHERE function_name = %s AND created_at > %s",
                [function_name, moment],
            ).fetchone()
        assert row is not None
        return int(row[0])

    def start_lines(self, function_name: str) -> collections.Counter[str]:
        """START lines written per request id: one per run that was recorded."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT e.request_id::text FROM monitoring_logevent e "
                "JOIN invocations_invocation i ON i.request_id = e.request_id "
                "WHERE i.function_name = %s AND e.message LIKE 'START RequestId:%%'",
                [function_name],
            ).fetchall()
        return collections.Counter(row[0] for row in rows)

    def wait_for_status(
        self, function_name: str, request_ids: list[str], statuses: set[str], timeout: float
    ) -> dict[str, Record]:
        found: dict[str, Record] = {}

        def reached() -> bool:
            found.update(self.records(function_name))
            return all(
                request_id in found and found[request_id].status in statuses
                for request_id in request_ids
            )

        try:
            wait_until(reached, timeout=timeout, what=f"{len(request_ids)} records {statuses}")
        except AssertionError as exc:
            stuck = [found.get(request_id, request_id) for request_id in request_ids]
            stuck = [r for r in stuck if not isinstance(r, Record) or r.status not in statuses]
            raise AssertionError(f"{exc}; not there yet: {stuck[:10]}") from None
        return found

    def wait_until_terminal(
        self, function_name: str, request_ids: list[str], timeout: float
    ) -> dict[str, Record]:
        return self.wait_for_status(
            function_name, request_ids, {"succeeded", "failed"}, timeout=timeout
        )


class Driver:
    """Talks to tests.chaos.driver: one command, one answer."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout

    def read(self) -> Any:
        line = self._stdout.readline()
        assert line, "the driver exited (see driver.log)"
        answer = json.loads(line)
        assert "error" not in answer, answer["error"]
        return answer["result"]

    def __call__(self, command: str, *args: object) -> Any:
        self._stdin.write(json.dumps({"command": command, "args": args}).encode() + b"\n")
        self._stdin.flush()
        return self.read()


def assert_nothing_lost(
    stack: Stack, function_name: str, accepted: list[str], *, succeeded: set[str]
) -> dict[str, Record]:
    """Every accepted invocation has exactly one record, in a terminal state; exactly
    `succeeded` succeeded, each with exactly one recorded run (one START line)."""
    records = stack.records(function_name)
    assert len(accepted) == len(set(accepted))
    assert set(records) == set(accepted), "records and accepted invocations differ"
    not_terminal = {r.request_id: r.status for r in records.values() if r.status not in
                    ("succeeded", "failed")}  # fmt: skip
    assert not not_terminal, f"not terminal: {not_terminal}"
    assert {r.request_id for r in records.values() if r.status == "succeeded"} == succeeded
    starts = stack.start_lines(function_name)
    assert all(starts[request_id] == 1 for request_id in succeeded), {
        request_id: starts[request_id] for request_id in succeeded if starts[request_id] != 1
    }
    assert all(count <= 1 for count in starts.values())
    return records
