"""Stem cells on the Docker backend: generic containers started ahead of demand that a new
function's first invocation specialises instead of creating a container. The function
must not be able to tell: same environment, code, user and file system as a container
started for it, and nothing of other functions or of the stem cell's own start."""

from __future__ import annotations

import json
import logging
import os
import socket
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from functions.services import function_create
from invocations import environments, runtimes
from invocations.runtime_api import ASSIGNMENT_PATH
from invocations.sandboxes import choose_backend
from invocations.sandboxes.docker import CONTAINER_PREFIX, DockerSandboxBackend
from invocations.sandboxes.process import ProcessSandboxBackend
from invocations.tests import test_docker_backend as docker_tests
from invocations.tests.helpers import invoke, make_function
from lib.processes import celery_worker_command, running
from monitoring.selectors import log_messages_for_invocation

pytestmark = pytest.mark.django_db

docker_client = docker_tests.docker_client
docker_backend = docker_tests.docker_backend

INSIDE = """
    import os, subprocess, sys

    print("Loading function")

    def lambda_handler(event, context):
        with open("/proc/self/environ", "rb") as initial:
            initial_environment = initial.read().decode()
        child = subprocess.run(["env", "-0"], capture_output=True).stdout.decode()
        return {
            "environment": dict(os.environ),
            "initial_environment": initial_environment,
            "child": dict(line.split("=", 1) for line in child.split("\\0") if line),
            "task": sorted(os.listdir("/var/task")),
            "code": open("/var/task/lambda_function.py").read(),
            "cwd": os.getcwd(),
            "uid": [os.getuid(), os.getgid()],
            "path": sys.path,
            "argv": sys.argv,
        }
"""
QUICK = """
    def lambda_handler(event, context):
        return context.log_stream_name
"""
# Values that differ between any two environments or functions.
PER_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "HOSTNAME",
    "_X_AMZN_TRACE_ID",
}


@pytest.fixture
def stems(settings, docker_backend) -> Iterator[object]:
    """The Docker backend keeping one idle stem cell of python3.11 at 128 MB."""
    settings.STRATUS_EE_PREWARM = "python3.11:128=1"
    yield docker_backend
    environments.shutdown_pool()
    leftover = docker_backend.containers(all=True, filters={"label": "stratus.stem"})
    assert not [c for c in leftover if _ours(c)], "stem cells outlive their pool"


def _ours(container: dict[str, object]) -> bool:
    labels = container.get("Labels") or {}
    assert isinstance(labels, dict)
    return str(labels.get("stratus.worker", "")).endswith(f":{os.getpid()}")


def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"timed out; pool: {environments.get_pool().stats()}"
        time.sleep(0.02)


def stems_ready() -> bool:
    return environments.get_pool().stats()["idle_stem_cells"] == 1


def idle_stem_containers(client) -> set[str]:
    containers = client.containers(filters={"label": "stratus.stem"})
    return {name.lstrip("/") for c in containers if _ours(c) for name in c["Names"]}


def test_a_new_functions_first_invocation_is_served_by_a_stem_cell(user, stems):
    until(stems_ready)
    waiting = idle_stem_containers(stems)
    function = make_function(user, INSIDE, name="fresh")

    first = invoke(function)
    second = invoke(function)

    assert first.status == "succeeded", first.response
    stats = environments.get_pool().stats()
    assert stats["stem_hits"] == 1 and stats["cold_starts"] == 0
    # It ran in the container that was waiting: none was created on its path.
    assert waiting == {CONTAINER_PREFIX + first.log_stream_name.rsplit("]", 1)[1]}
    assert first.init_duration_ms is not None and 0 < first.init_duration_ms < 2000
    lines = log_messages_for_invocation(request_id=first.request_id)
    assert lines[:2] == [
        "Loading function",
        f"START RequestId: {first.request_id} Version: $LATEST",
    ]
    assert "Init Duration" in lines[-1]
    assert second.init_duration_ms is None and second.log_stream_name == first.log_stream_name
    seen = json.loads(first.response)
    assert seen["environment"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert seen["task"] == ["lambda_function.py"] and "Loading function" in seen["code"]
    assert seen["cwd"] == "/var/task" and seen["uid"] == [993, 990]


def test_the_function_sees_what_a_container_started_for_it_would_show(user, stems):
    until(stems_ready)
    variables = {"GREETING": "hi", "PYTHONPATH": "/opt/extra"}
    from_stem = make_function(user, INSIDE, name="stem", environment=variables)
    # No stem cell of 256 MB: a container is started for this twin.
    twin = make_function(user, INSIDE, name="twin", environment=variables, memory_size=256)

    stem_run = invoke(from_stem)
    twin_run = invoke(twin)

    stats = environments.get_pool().stats()
    assert stats["stem_hits"] == 1 and stats["cold_starts"] == 1
    stem_seen, twin_seen = json.loads(stem_run.response), json.loads(twin_run.response)
    environment = stem_seen["environment"]
    assert environment.keys() == twin_seen["environment"].keys()
    for name, value in twin_seen["environment"].items():
        if name not in PER_ENVIRONMENT:
            assert environment[name] == value, name
    assert set(environment) - docker_tests.LAMBDA_VARIABLES == {"GREETING"}
    assert environment["PYTHONPATH"] == "/var/runtime:/opt/extra"
    assert stem_seen["child"] == environment, "child processes inherit the function's variables"
    assert stem_seen["path"] == twin_seen["path"] and stem_seen["argv"] == twin_seen["argv"]
    for key in ("task", "code", "cwd", "uid"):
        assert stem_seen[key] == twin_seen[key], key
    # The process's initial environment (fixed when it was executed) is the stem cell's
    # neutral one: nothing of the function, nothing of Stratus.
    initial = dict(v.split("=", 1) for v in stem_seen["initial_environment"].split("\0") if v)
    assert "GREETING" not in initial and "AWS_LAMBDA_FUNCTION_NAME" not in initial
    assert set(initial) <= docker_tests.LAMBDA_VARIABLES
    stratus_values = {os.environ.get(n) for n in ("DATABASE_URL", "CELERY_BROKER_URL")} - {None}
    assert not stratus_values & set(initial.values())


def test_a_second_function_gets_the_replacement_and_other_sizes_cold_start(user, stems):
    until(stems_ready)
    first = make_function(user, QUICK, name="first")
    second = make_function(user, QUICK, name="second")
    larger = make_function(user, QUICK, name="larger", memory_size=512)

    assert invoke(first).status == "succeeded"
    until(stems_ready)
    assert invoke(second).status == "succeeded"
    assert invoke(larger).status == "succeeded"

    stats = environments.get_pool().stats()
    assert stats["stem_hits"] == 2 and stats["cold_starts"] == 1
    until(lambda: environments.get_pool().stats()["stem_starts"] == 3)


def test_a_specialised_stem_cell_holds_only_its_own_functions_code(user, stems):
    until(stems_ready)
    secret = function_create(
        owner=user,
        name="secret",
        role=None,
        files={"lambda_function.py": textwrap.dedent(QUICK), "secret_marker.py": ""},
    )
    assert invoke(secret).status == "succeeded"
    until(stems_ready)
    searcher = make_function(
        user,
        """
        import os

        def lambda_handler(event, context):
            found = []
            for top in ("/var", "/tmp", "/opt", "/home", "/root", "/srv", "/mnt", "/work"):
                for folder, _, files in os.walk(top):
                    found += [os.path.join(folder, f) for f in files if "secret_marker" in f]
            return {"found": found, "task": sorted(os.listdir("/var/task"))}
        """,
        name="searcher",
    )

    searched = invoke(searcher)

    assert environments.get_pool().stats()["stem_hits"] == 2
    seen = json.loads(searched.response)
    assert seen == {"found": [], "task": ["lambda_function.py"]}


def test_only_its_container_can_take_a_stem_cells_assignment(user, stems):
    until(stems_ready)
    thief = make_function(
        user,
        """
        import http.client

        def lambda_handler(event, context):
            host, port = event["address"].split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=3)
            try:
                connection.request("GET", event["path"])
                response = connection.getresponse()
                return f"got {response.status}: {response.read()[:200]!r}"
            except Exception as exc:
                return f"refused: {type(exc).__name__}"
        """,
        name="thief",
    )
    assert invoke(thief, '{"address": "127.0.0.1:1", "path": "/"}').status == "succeeded"
    until(stems_ready)
    pool = environments.get_pool()
    (waiting,) = [stem for group in pool._stems.values() for stem in group]
    address = f"{pool.backend.runtime_api_bind_host}:{waiting.api.port}"

    from_function = invoke(thief, json.dumps({"address": address, "path": ASSIGNMENT_PATH}))
    with socket.create_connection((pool.backend.runtime_api_bind_host, waiting.api.port), 3) as s:
        s.settimeout(ASSIGNMENT_TIMEOUT)
        s.sendall(f"GET {ASSIGNMENT_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        from_host = s.recv(1024)

    assert json.loads(from_function.response).startswith("refused: "), from_function.response
    assert from_host == b"", "the host's address is not the stem cell's container"
    victim = make_function(user, INSIDE, name="victim", environment={"TOKEN": "t0ps3cret"})
    served = invoke(victim)
    assert served.status == "succeeded" and pool.stats()["stem_hits"] == 2
    assert json.loads(served.response)["environment"]["TOKEN"] == "t0ps3cret"


# The endpoint waits this long for the worker to say which address it admits, then closes.
ASSIGNMENT_TIMEOUT = 15


@pytest.mark.django_db(transaction=True)
def test_a_worker_starts_its_stem_cells_when_it_starts_and_removes_them_when_it_stops(
    docker_client, tmp_path
):
    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.fail("This test needs a broker: set CELERY_BROKER_URL.")
    database = connection.settings_dict
    url = (
        f"postgres://{database.get('USER') or 'postgres'}@{database.get('HOST') or '127.0.0.1'}"
        f":{database.get('PORT') or 5432}/{database['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "STRATUS_SANDBOX_BACKEND": "auto",
        "STRATUS_EE_PREWARM": "python3.11:128=1",
    }
    command = celery_worker_command(name=f"stem-{uuid.uuid4().hex[:8]}", concurrency=2)
    log_path = tmp_path / "worker.log"

    def stems_of(pid: int) -> list[dict[str, object]]:
        containers = docker_client.containers(all=True, filters={"label": "stratus.stem"})
        return [c for c in containers if c["Labels"]["stratus.worker"].endswith(f":{pid}")]

    with running(command, log_path=log_path, env=env) as worker:
        give_up = time.monotonic() + 60
        while not stems_of(worker.pid):
            assert worker.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < give_up, log_path.read_text()[-3000:]
            time.sleep(0.2)
        assert "sandbox backend: Docker" in log_path.read_text()

    assert not stems_of(worker.pid), "a stopping worker removes its stem cells"


def test_auto_chooses_docker_where_the_engine_answers(docker_client, caplog):
    with caplog.at_level(logging.INFO, logger="invocations.sandboxes"):
        backend = choose_backend()

    assert isinstance(backend, DockerSandboxBackend)
    assert "sandbox backend: Docker" in caplog.text


def test_auto_falls_back_to_processes_when_no_engine_answers(monkeypatch, caplog):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")

    with caplog.at_level(logging.WARNING, logger="invocations.sandboxes"):
        backend = choose_backend()

    assert isinstance(backend, ProcessSandboxBackend)
    assert "sandbox backend: process, because no Docker engine answers" in caplog.text
    assert "NOT isolated" in caplog.text


def test_auto_falls_back_to_processes_without_the_runtime_image(docker_client, monkeypatch, caplog):
    monkeypatch.setattr(runtimes, "image_for", lambda runtime: "stratus-runtime:not-built")

    with caplog.at_level(logging.WARNING, logger="invocations.sandboxes"):
        backend = choose_backend()

    assert isinstance(backend, ProcessSandboxBackend)
    assert "the runtime image stratus-runtime:not-built is missing" in caplog.text
