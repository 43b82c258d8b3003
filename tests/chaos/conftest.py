"""Fixtures of the chaos tests: one private Postgres cluster for the session (migrated once),
a private Redis for each test, and the Stratus processes on them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.processes import BASE_DIR
from tests.chaos.stack import Driver, PostgresServer, RedisServer, Stack

DATABASE = "stratus"


@pytest.fixture(scope="session")
def chaos_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.init()
        server.start()
        server.create_database(DATABASE)
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "migrate",
                "--noinput",
                "--skip-checks",
                "--verbosity",
                "0",
            ],
            cwd=BASE_DIR,
            env=Stack(
                database_url=server.url(DATABASE),
                redis=RedisServer(server.root),
                workdir=server.root,
            ).env(),
            check=True,
        )
        yield server
    finally:
        server.destroy()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def stack(chaos_postgres: PostgresServer, redis: RedisServer, tmp_path: Path) -> Stack:
    return Stack(database_url=chaos_postgres.url(DATABASE), redis=redis, workdir=tmp_path)


@pytest.fixture
def driver(stack: Stack) -> Iterator[Driver]:
    with stack.driver() as process:
        yield process
