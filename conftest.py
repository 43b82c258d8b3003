"""Shared fixtures.

Unit tests run Celery tasks in-process (eager). Tests marked `worker` run against a real
Celery worker process on the configured Redis broker and the test database; without a
broker they fail, never skip.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection

from console.celery import app as celery_app
from invocations import lane
from lib.processes import celery_worker_command, running

WORKER_START_TIMEOUT = 60
ASYNC_RETRY_DELAY_SCALE = 0.01


@pytest.fixture(autouse=True)
def _eager_unless_worker(request: pytest.FixtureRequest) -> Iterator[None]:
    eager = request.node.get_closest_marker("worker") is None
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("Worker tests need Postgres: set DATABASE_URL to a Postgres database.")
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process on the test database, for the whole session."""
    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.fail(
            "Worker tests need a broker: set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/15)."
        )
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        for queue in ("invocations", "default"):
            conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]
    lane.purge()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        # Lambda waits 1 and 2 minutes before an asynchronous event's retries: 0.6 and 1.2 s.
        "STRATUS_ASYNC_RETRY_DELAY_SCALE": os.environ.get(
            "STRATUS_ASYNC_RETRY_DELAY_SCALE", str(ASYNC_RETRY_DELAY_SCALE)
        ),
    }
    command = celery_worker_command(name=f"test-{uuid.uuid4().hex[:8]}")
    with running(command, log_path=log_path, env=env) as process:
        _wait_until_serving(process, log_path)
        yield process


def _wait_until_serving(process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    result = celery_app.send_task("stratus.ping")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The Celery worker exited at start:\n{log_path.read_text()[-4000:]}")
        if result.ready():
            return
        time.sleep(0.1)
    pytest.fail(f"The Celery worker did not answer within {WORKER_START_TIMEOUT} s")


@pytest.fixture
def live_worker(celery_worker_process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    assert celery_worker_process.poll() is None, "the Celery worker died"
    return celery_worker_process


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user(username="alice", password="correct horse battery staple")


@pytest.fixture
def other_user(db: None) -> User:
    return User.objects.create_user(username="bob", password="correct horse battery staple")


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # WhiteNoise warns on every request when the collected-static folder does not exist.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    # Tests run code on threads of their own that end without closing their connection; in
    # a pool those connections would stay checked out until it runs dry. Servers and the
    # worker close theirs after each request or task, and the worker process under test
    # keeps its pool.
    for database in settings.DATABASES.values():
        database.get("OPTIONS", {}).pop("pool", None)
    # The suite runs on the process backend (fast) unless STRATUS_SANDBOX_BACKEND says
    # otherwise; the Docker tests choose the Docker backend themselves. The worker process
    # under test inherits the choice.
    process_backend = "invocations.sandboxes.process.ProcessSandboxBackend"
    backend = os.environ.setdefault("STRATUS_SANDBOX_BACKEND", process_backend)
    settings.STRATUS_SANDBOX = {**settings.STRATUS_SANDBOX, "BACKEND": backend}
