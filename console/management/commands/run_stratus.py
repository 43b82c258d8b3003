"""Serve Stratus: the web server, plus the Celery worker and scheduler when a broker is set.

Each process runs in its own process group, so stopping it also stops whatever it started
(function runtimes, gunicorn's workers). Ctrl-C or SIGTERM stops them all; if one of them
dies on its own, the rest are stopped too and the command exits non-zero.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEFAULT_PORT = 8000
# A synchronous invoke holds its thread while the worker runs it: with no more threads than
# the worker has, an Event invoke or a console page waits behind them. Waiting threads cost
# next to nothing.
WEB_THREADS = 32
WORKER_CONCURRENCY = 8
# Seconds each process gets to finish after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 15
_POLL_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    # Seconds it gets to finish after SIGTERM before it is killed.
    grace: float = STOP_GRACE_SECONDS


def web_spec(*, host: str, port: int) -> ProcessSpec:
    return ProcessSpec(
        name="web",
        argv=[
            sys.executable,
            "-m",
            "gunicorn",
            "console.wsgi",
            "--bind",
            f"{host}:{port}",
            # One process: without a broker the invocations run inside it, and their
            # execution environments must be shared by all request threads.
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(WEB_THREADS),
            "--graceful-timeout",
            str(STOP_GRACE_SECONDS - 5),
            # Its default path is shared by every gunicorn of the user: two consoles would clash.
            "--no-control-socket",
        ],
    )


def worker_spec() -> ProcessSpec:
    return ProcessSpec(
        name="worker",
        argv=[
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-Q",
            "invocations,default",
            # Threads, not processes: the execution environments and their Runtime API
            # servers live in the worker process and are shared by its threads.
            "--pool",
            "threads",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--loglevel",
            "INFO",
        ],
        # The worker lets running invocations finish, up to its drain timeout, then hands
        # back the rest itself: killing it sooner would leave them to the sweeper.
        grace=settings.STRATUS_WORKER_DRAIN_TIMEOUT + 5,
    )


def scheduler_spec() -> ProcessSpec:
    return ProcessSpec(
        name="scheduler",
        argv=[
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "beat",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
            "--loglevel",
            "INFO",
        ],
    )


def process_specs(*, host: str, port: int, embedded_worker: bool) -> list[ProcessSpec]:
    specs = [web_spec(host=host, port=port)]
    if not embedded_worker:
        specs += [worker_spec(), scheduler_spec()]
    return specs


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the supervisor is killed outright, the
    # kernel sends the child SIGTERM instead of leaving it orphaned.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Starts processes, waits until one exits or a stop is asked for, then stops them all."""

    def __init__(self, specs: list[ProcessSpec], *, write: Callable[[str], None]) -> None:
        self._specs = specs
        self._write = write
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._stop_signal: int | None = None
        self._force = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_signal is not None:
            self._force = True
        self._stop_signal = signum

    def run(self) -> int:
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            return self._run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self) -> int:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "PYTHONUNBUFFERED": "1"}
        for spec in self._specs:
            self._children[spec.name] = subprocess.Popen(
                spec.argv,
                cwd=settings.BASE_DIR,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            self._write(f"started {spec.name} (pid {self._children[spec.name].pid})")

        failed: tuple[str, int] | None = None
        while self._stop_signal is None and failed is None:
            for name, child in self._children.items():
                returncode = child.poll()
                if returncode is not None:
                    failed = (name, returncode)
                    break
            else:
                time.sleep(_POLL_SECONDS)

        if failed is not None:
            self._write(f"{failed[0]} exited with status {failed[1]}; stopping the others")
        else:
            self._write("stopping (press Ctrl-C again to kill at once)")
        self._stop_all()
        if failed is None:
            return 0
        returncode = failed[1]
        # A child killed by a signal reports -N; shells say 128 + N for that.
        return 128 - returncode if returncode < 0 else returncode or 1

    def _signal_groups(self, signum: int) -> None:
        for child in self._children.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signum)

    def _groups_alive(self) -> bool:
        alive = False
        for child in self._children.values():
            child.poll()
            try:
                os.killpg(child.pid, 0)
            except (ProcessLookupError, PermissionError):
                continue
            alive = True
        return alive

    def _stop_all(self) -> None:
        self._signal_groups(signal.SIGTERM)
        deadline = time.monotonic() + max(spec.grace for spec in self._specs)
        while self._groups_alive() and time.monotonic() < deadline and not self._force:
            time.sleep(_POLL_SECONDS)
        if self._groups_alive():
            self._write("killing what is still running")
            self._signal_groups(signal.SIGKILL)
        for child in self._children.values():
            child.wait()
        self._write("stopped")


class Command(BaseCommand):
    help = (
        "Serve the console on 127.0.0.1:$PORT (default 8000); with CELERY_BROKER_URL set, "
        "also run the Celery worker and scheduler. Stops everything on Ctrl-C."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to bind")
        parser.add_argument(
            "--port", type=int, default=None, help="port to bind (default: $PORT or 8000)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port = options["port"] or _port_from_env()
        host: str = options["host"]
        embedded = bool(settings.EMBEDDED_WORKER)
        specs = process_specs(host=host, port=port, embedded_worker=embedded)

        self._print_banner(host=host, port=port, embedded=embedded)
        supervisor = Supervisor(specs, write=lambda line: self.stdout.write(f"[stratus] {line}"))
        returncode = supervisor.run()
        if returncode != 0:
            raise CommandError("a Stratus process stopped unexpectedly", returncode=returncode)

    def _print_banner(self, *, host: str, port: int, embedded: bool) -> None:
        shown_host = f"[{host}]" if ":" in host else host
        url = f"http://{shown_host}:{port}/"
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        if embedded:
            worker = "in the web process (set CELERY_BROKER_URL to run a separate worker)"
        else:
            worker = "separate Celery worker and scheduler"
        admins = list(
            get_user_model()
            .objects.filter(is_superuser=True)
            .order_by("pk")
            .values_list("username", flat=True)
        )
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Stratus console: {url}"))
        self.stdout.write(f"  database: {database}")
        self.stdout.write(f"  invocations: {worker}")
        if admins:
            self.stdout.write(
                f"  sign in as {', '.join(admins)} with the password printed when the "
                "account was created (or DJANGO_SUPERUSER_PASSWORD)"
            )
            self.stdout.write(f"  forgot it? python manage.py changepassword {admins[0]}")
        else:
            self.stdout.write("  no administrator yet: run python manage.py ensure_admin")
        self.stdout.write("  press Ctrl-C to stop")
        self.stdout.write("")


def _port_from_env() -> int:
    raw = os.environ.get("PORT", "")
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError as exc:
        raise CommandError(f"PORT must be a number, not {raw!r}") from exc
    if not 0 < port < 65536:
        raise CommandError(f"PORT must be between 1 and 65535, not {port}")
    return port
