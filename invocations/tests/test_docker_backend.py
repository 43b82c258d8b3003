"""The invocation engine end to end on the Docker backend: real containers of the runtime
image, hardened, with output, exits, memory and timeouts read back from the engine."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from django.core.management import call_command

from invocations import environments
from invocations.sandboxes import get_backend
from invocations.sandboxes.base import SandboxError
from invocations.sandboxes.docker import (
    CONTAINER_PREFIX,
    WORKER_LABEL,
    WORKER_STARTED_LABEL,
    DockerSandbox,
    DockerSandboxBackend,
    _process_start_time,
    describe_exit_code,
    docker_api,
)
from invocations.tests.helpers import invoke, make_function
from monitoring.selectors import log_messages_for_invocation

pytestmark = pytest.mark.django_db

BACKEND = "invocations.sandboxes.docker.DockerSandboxBackend"
MB = 1024 * 1024
HELLO = """
    print("Loading function")

    def lambda_handler(event, context):
        print("value1 = " + event["key1"])
        return event["key1"]
"""
REPORT_RE = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: \d+\.\d\d ms\t"
    r"Billed Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: [1-9]\d* MB\t"
    r"(Init Duration: \d+\.\d\d ms\t)?$"
)
# What a function may find in its environment: Lambda's variables, its own, and what the
# container itself sets (host name, home, working directory).
LAMBDA_VARIABLES = {
    "PATH", "LANG", "LD_LIBRARY_PATH", "PYTHONPATH", "TZ", "_HANDLER", "_X_AMZN_TRACE_ID",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    "HOSTNAME", "HOME", "PWD",
}  # fmt: skip


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.APIClient]:
    try:
        client = docker_api()
        client.ping()
    except (SandboxError, docker.errors.DockerException) as exc:
        pytest.fail(f"These tests need a running Docker engine: {exc}")
    call_command("build_runtimes", verbosity=0)
    yield client
    client.close()


@pytest.fixture
def docker_backend(settings, docker_client) -> Iterator[docker.APIClient]:
    """The engine runs on the Docker backend for this test; its pool starts and ends empty."""
    settings.STRATUS_SANDBOX = {"BACKEND": BACKEND, "OPTIONS": {}}
    get_backend.cache_clear()
    environments.shutdown_pool()
    yield docker_client
    environments.shutdown_pool()
    get_backend.cache_clear()


def _container_name(log_stream_name: str) -> str:
    return CONTAINER_PREFIX + log_stream_name.rsplit("]", 1)[1]


def _containers_named(client: docker.APIClient, name: str) -> list[dict[str, object]]:
    containers = client.containers(all=True, filters={"name": name})
    return [c for c in containers if f"/{name}" in c["Names"]]


def test_hello_world_runs_in_a_hardened_container(user, docker_backend):
    function = make_function(user, HELLO, name="hello-docker")

    cold = invoke(function, '{"key1": "hello, world!"}')
    warm = invoke(function, '{"key1": "again"}')

    assert cold.status == "succeeded"
    assert json.loads(cold.response) == "hello, world!"
    request_id = str(cold.request_id)
    lines = log_messages_for_invocation(request_id=cold.request_id)
    assert lines[:4] == [
        "Loading function",
        f"START RequestId: {request_id} Version: $LATEST",
        "value1 = hello, world!",
        f"END RequestId: {request_id}",
    ]
    report = REPORT_RE.match(lines[4])
    assert report and report["id"] == request_id and "Init Duration" in lines[4]
    assert cold.init_duration_ms is not None and cold.init_duration_ms > 0
    assert warm.status == "succeeded" and warm.init_duration_ms is None
    assert warm.log_stream_name == cold.log_stream_name
    warm_lines = log_messages_for_invocation(request_id=warm.request_id)
    assert "Loading function" not in warm_lines and "Init Duration" not in warm_lines[-1]

    name = _container_name(cold.log_stream_name)
    container = docker_backend.inspect_container(name)
    assert container["State"]["Running"]
    labels = container["Config"]["Labels"]
    assert labels["stratus.function"] == "hello-docker"
    assert labels["stratus.environment"] == name.removeprefix(CONTAINER_PREFIX)
    assert labels[WORKER_LABEL] == f"{socket.gethostname()}:{os.getpid()}"
    assert container["Config"]["User"] == "993:990"
    host = container["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == host["MemorySwap"] == 128 * MB
    assert host["PidsLimit"] == 1024
    assert 0 < host["NanoCpus"] <= (os.cpu_count() or 1) * 10**9
    assert {u["Name"]: u["Hard"] for u in host["Ulimits"]}["nofile"] == 1024
    assert host["Tmpfs"]["/tmp"].startswith("rw,exec,") and "size=512m" in host["Tmpfs"]["/tmp"]
    binds = [m for m in container["Mounts"] if m["Type"] == "bind"]
    assert [(m["Destination"], m["RW"]) for m in binds] == [("/var/task", False)]
    assert host["LogConfig"]["Config"]["max-size"] == "1m"
    assert host["NetworkMode"] == "stratus-functions"


def test_the_handler_sees_lambdas_sandbox_and_only_lambdas_environment(user, docker_backend):
    function = make_function(
        user,
        """
        import os

        def attempt(path):
            try:
                with open(path, "w") as file:
                    file.write("x")
            except OSError as exc:
                return exc.strerror
            return "written"

        def lambda_handler(event, context):
            tmp = os.statvfs("/tmp")
            return {
                "cwd": os.getcwd(),
                "uid": os.getuid(),
                "gid": os.getgid(),
                "task": sorted(os.listdir("/var/task")),
                "write_task": attempt("/var/task/new.txt"),
                "write_root": attempt("/new.txt"),
                "write_runtime": attempt("/var/runtime/new.txt"),
                "write_tmp": attempt("/tmp/new.txt"),
                "tmp_mb": tmp.f_blocks * tmp.f_frsize // (1024 * 1024),
                "environment": dict(os.environ),
            }
        """,
        name="inside",
        environment={"GREETING": "hi"},
    )

    invocation = invoke(function)

    assert invocation.status == "succeeded", invocation.response
    seen = json.loads(invocation.response)
    assert seen["cwd"] == "/var/task"
    assert (seen["uid"], seen["gid"]) == (993, 990)
    assert seen["task"] == ["lambda_function.py"]
    assert seen["write_task"] == "Read-only file system"
    assert seen["write_root"] == "Read-only file system"
    assert seen["write_runtime"] == "Read-only file system"
    assert seen["write_tmp"] == "written"
    assert seen["tmp_mb"] == 512
    environment = seen["environment"]
    assert environment["GREETING"] == "hi"
    assert environment["LAMBDA_TASK_ROOT"] == "/var/task"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+", environment["AWS_LAMBDA_RUNTIME_API"])
    assert set(environment) - LAMBDA_VARIABLES == {"GREETING"}
    stratus_values = {os.environ.get(n) for n in ("DATABASE_URL", "CELERY_BROKER_URL")} - {None}
    assert not stratus_values & set(environment.values())


def test_max_memory_used_is_measured_in_the_container(user, docker_backend):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            block = b"x" * (60 * 1024 * 1024)
            return len(block)
        """,
        memory_size=256,
    )

    invocation = invoke(function)

    assert invocation.status == "succeeded"
    assert invocation.max_memory_used_mb is not None
    assert 60 <= invocation.max_memory_used_mb < 256
    lines = log_messages_for_invocation(request_id=invocation.request_id)
    assert f"Max Memory Used: {invocation.max_memory_used_mb} MB" in lines[-1]


def test_memory_bomb_is_an_exit_error_and_the_next_invocation_works(user, docker_backend):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            if event.get("bomb"):
                blocks = []
                while True:
                    blocks.append(b"x" * (8 * 1024 * 1024))
            return "fine"
        """,
        memory_size=128,
    )

    bombed = invoke(function, '{"bomb": true}')
    after = invoke(function)

    assert bombed.error_type == "Runtime.ExitError"
    assert json.loads(bombed.response)["errorMessage"] == (
        f"RequestId: {bombed.request_id} Error: Runtime exited with error: signal: killed"
    )
    assert bombed.max_memory_used_mb == 128
    assert after.status == "succeeded" and json.loads(after.response) == "fine"
    assert after.init_duration_ms is not None, "the killed environment must be replaced"
    assert not _containers_named(docker_backend, _container_name(bombed.log_stream_name))


def test_timeout_kills_the_container_and_it_is_gone(user, docker_backend):
    function = make_function(
        user,
        """
        import time

        def lambda_handler(event, context):
            time.sleep(30)
        """,
        timeout=1,
    )

    invocation = invoke(function)

    assert invocation.error_type == "Sandbox.Timedout"
    assert re.fullmatch(
        rf"RequestId: {invocation.request_id} Error: Task timed out after 1\.\d\d seconds",
        json.loads(invocation.response)["errorMessage"],
    )
    assert not _containers_named(docker_backend, _container_name(invocation.log_stream_name))


def test_a_stopped_environment_leaves_no_container(user, docker_backend):
    function = make_function(user, HELLO)
    invocation = invoke(function, '{"key1": "x"}')
    name = _container_name(invocation.log_stream_name)
    assert _containers_named(docker_backend, name), "the warm environment keeps its container"

    environments.shutdown_pool()

    assert not _containers_named(docker_backend, name)


def test_orphans_of_dead_workers_are_removed_and_live_ones_kept(docker_backend):
    backend = get_backend()
    assert isinstance(backend, DockerSandboxBackend)
    host = socket.gethostname()
    dead_pid = _dead_pid()
    owners = {
        "orphan": {WORKER_LABEL: f"{host}:{dead_pid}"},
        "reused-pid": {WORKER_LABEL: f"{host}:{os.getpid()}", WORKER_STARTED_LABEL: "1"},
        "live": {
            WORKER_LABEL: f"{host}:{os.getpid()}",
            WORKER_STARTED_LABEL: _process_start_time(os.getpid()),
        },
        "other-host": {WORKER_LABEL: f"elsewhere-{host}:{dead_pid}"},
    }
    names = {}
    try:
        for role, labels in owners.items():
            names[role] = f"{CONTAINER_PREFIX}test-{role}-{uuid.uuid4().hex[:8]}"
            container = docker_backend.create_container(
                "stratus-runtime:python3.11", ["sleep", "60"], name=names[role], labels=labels
            )
            docker_backend.start(container["Id"])

        removed = backend.remove_orphans()

        assert removed == 2
        assert not _containers_named(docker_backend, names["orphan"])
        assert not _containers_named(docker_backend, names["reused-pid"])
        assert _containers_named(docker_backend, names["live"])
        assert _containers_named(docker_backend, names["other-host"])
    finally:
        for name in names.values():
            with contextlib.suppress(docker.errors.NotFound):
                docker_backend.remove_container(name, force=True)


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@pytest.mark.parametrize(
    ("code", "words"),
    [(0, "exit status 0"), (3, "exit status 3"), (137, "signal: killed"),
     (143, "signal: terminated"), (139, "signal: segmentation fault"), (134, "signal: aborted"),
     (255, "exit status 255")],
)  # fmt: skip
def test_exit_codes_are_worded_like_lambdas(code, words):
    assert describe_exit_code(code) == words


def test_output_frames_are_joined_across_reads():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    sandbox = DockerSandbox(
        api=None,  # type: ignore[arg-type]
        environment_id="frames",
        container_id="frames",
        stream=ours,
        memory_size=128,
        network="stratus-functions",
    )
    payloads = [(1, b"hello "), (2, b"from stderr\n"), (1, b"x" * 70_000), (2, b"end")]
    frames = b"".join(
        bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload
        for stream, payload in payloads
    )
    output = b""
    sent = 0
    try:
        # Cut inside a header, between frames, and inside a payload.
        for cut in (3, 9, 20, 30, 50_000, len(frames)):
            theirs.sendall(frames[sent:cut])
            sent = cut
            output += sandbox.read_output()
    finally:
        theirs.close()
    output += sandbox.read_output()

    assert output == b"".join(payload for _, payload in payloads)


class _Engine:
    """Answers inspect_container with the given states, one per call, the last repeated."""

    def __init__(self, *states: dict[str, object]) -> None:
        self.states = list(states)
        self.calls = 0

    def inspect_container(self, container_id: str) -> dict[str, object]:
        self.calls += 1
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"State": state}


def _ended_sandbox(engine: _Engine) -> DockerSandbox:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.close()
    return DockerSandbox(
        api=engine,  # type: ignore[arg-type]
        environment_id="ended",
        container_id="ended",
        stream=ours,
        memory_size=128,
        network="stratus-functions",
    )


def test_an_ended_stream_of_a_running_container_is_polled_not_spun_on():
    engine = _Engine({"Running": True}, {"Running": False, "ExitCode": 3, "OOMKilled": False})
    sandbox = _ended_sandbox(engine)

    assert sandbox.read_output() == b""
    assert sandbox.exit_reason() is None
    assert sandbox.exit_reason() is None and engine.calls == 1, "the engine is asked sparingly"
    readable, _, _ = select.select([sandbox.log_fileno()], [], [], 0.1)
    assert readable == [], "an ended stream must not keep select() returning"
    assert sandbox.exit_reason() == "exit status 3"
    assert sandbox.exit_reason() == "exit status 3" and engine.calls == 2


@pytest.mark.parametrize(
    ("state", "reason", "memory"),
    [
        ({"Running": False, "ExitCode": 137, "OOMKilled": True}, "signal: killed", 128),
        # OOMKilled is sticky: a child killed earlier does not make a clean exit an OOM.
        ({"Running": False, "ExitCode": 0, "OOMKilled": True}, "exit status 0", 0),
        ({"Running": False, "ExitCode": 137, "OOMKilled": False}, "signal: killed", 0),
    ],
)
def test_out_of_memory_is_read_from_the_exit_code_and_the_flag(state, reason, memory):
    sandbox = _ended_sandbox(_Engine(state))
    sandbox.read_output()

    assert sandbox.exit_reason() == reason
    assert sandbox.max_memory_used_mb() == memory


def test_a_function_cannot_take_another_functions_events(user, docker_backend):
    victim = make_function(
        user, "def lambda_handler(event, context):\n    return 'mine'\n", name="victim"
    )
    invoke(victim)
    pool = environments.get_pool()
    (victim_environment,) = [e for group in pool._idle.values() for e in group]
    address = f"{pool.backend.runtime_api_bind_host}:{victim_environment.api.port}"
    thief = make_function(
        user,
        """
        import http.client

        def lambda_handler(event, context):
            host, port = event["address"].split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                connection.request("GET", "/2018-06-01/runtime/invocation/next")
                response = connection.getresponse()
                return f"got {response.status}: {response.read()[:200]!r}"
            except Exception as exc:
                return f"refused: {type(exc).__name__}"
        """,
        name="thief",
    )

    stolen = invoke(thief, json.dumps({"address": address}))

    assert json.loads(stolen.response).startswith("refused: "), stolen.response
    after = invoke(victim)
    assert json.loads(after.response) == "mine"
    assert after.init_duration_ms is None, "the victim's environment must still serve it"
