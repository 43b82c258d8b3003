"""Hostile code on the Docker backend: each test runs a function that attacks its sandbox,
the host or its neighbours, asserts the specific way the attack fails, and then that the
host, the worker and other functions are healthy and the same function works again."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import random
import re
import socket
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from django.conf import settings

from functions.models import Function
from invocations import code_cache, environments
from invocations.models import Invocation
from invocations.sandboxes import get_backend
from invocations.sandboxes.docker import (
    CONTAINER_PREFIX,
    ENVIRONMENT_LABEL,
    WORKER_LABEL,
    DockerSandboxBackend,
)
from invocations.sandboxes.network import PortRange
from invocations.tests import test_docker_backend as docker_tests
from invocations.tests.helpers import invoke, make_function
from monitoring.selectors import log_messages_for_invocation

pytestmark = pytest.mark.django_db

# The Docker backend's fixtures, shared with its own tests.
docker_client = docker_tests.docker_client
docker_backend = docker_tests.docker_backend

MB = 1024 * 1024
BYSTANDER = """
    def lambda_handler(event, context):
        return "unbothered"
"""
TIMED_OUT_RE = r"RequestId: {id} Error: Task timed out after {seconds}\.\d\d seconds"


@pytest.fixture
def backend(docker_backend) -> DockerSandboxBackend:
    backend = get_backend()
    assert isinstance(backend, DockerSandboxBackend)
    return backend


@pytest.fixture
def healthy(user, backend, docker_backend):
    """Call with the attacking function and a payload it handles normally, after the attack:
    asserts the host, the worker and a bystander function are fine and that the function
    serves that payload. Returns the function's next invocation."""
    bystander = make_function(user, BYSTANDER, name="bystander")

    def check(function: Function, payload: str = "{}") -> Invocation:
        subprocess.run(["true"], check=True, timeout=10)
        assert threading.active_count() < 100, "the worker's threads end with their environments"
        assert docker_backend.ping()
        assert Function.objects.filter(pk=function.pk).exists()
        other = invoke(bystander)
        assert other.status == "succeeded", other.response
        assert json.loads(other.response) == "unbothered"
        after = invoke(function, payload)
        assert after.status == "succeeded", after.response
        _assert_nothing_leaked(docker_backend, backend)
        return after

    return check


def _assert_nothing_leaked(client: docker.APIClient, backend: DockerSandboxBackend) -> None:
    """Every container of this worker is a running environment, and every scratch volume
    belongs to one of them."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    containers = client.containers(all=True, filters={"label": f"{WORKER_LABEL}={worker}"})
    assert [c["State"] for c in containers] == ["running"] * len(containers)
    assert backend.scratch is not None
    folder = backend.scratch.folder
    mounted = {p.name for p in folder.iterdir() if os.path.ismount(p)} if folder.is_dir() else set()
    assert mounted == {c["Labels"][ENVIRONMENT_LABEL] for c in containers}


def _container_gone(client: docker.APIClient, invocation: Invocation) -> bool:
    name = CONTAINER_PREFIX + invocation.log_stream_name.rsplit("]", 1)[1]
    try:
        client.inspect_container(name)
    except docker.errors.NotFound:
        return True
    return False


def _logs(invocation: Invocation) -> list[str]:
    return log_messages_for_invocation(request_id=invocation.request_id)


def _error_message(invocation: Invocation) -> str:
    return str(json.loads(invocation.response)["errorMessage"])


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_fork_bomb_stops_at_the_pids_limit(user, docker_backend, healthy):
    function = make_function(
        user,
        """
        import os
        import subprocess
        import time

        def lambda_handler(event, context):
            if event.get("bomb"):
                subprocess.Popen(
                    ["/bin/sh", "-c", "bomb() { bomb | bomb & }; bomb"], stderr=subprocess.DEVNULL
                )
                while True:
                    try:
                        pid = os.fork()
                    except OSError as exc:
                        print(f"fork refused: {exc.strerror}", flush=True)
                        time.sleep(60)
                        continue
                    if pid == 0:
                        os._exit(0)
                    os.waitpid(pid, 0)
            return "calm"
        """,
        memory_size=512,
        # Room for the bomb to reach the pids limit even on a busy host.
        timeout=6,
    )

    bombed = invoke(function, '{"bomb": true}')

    assert bombed.error_type == "Sandbox.Timedout"
    assert re.fullmatch(
        TIMED_OUT_RE.format(id=bombed.request_id, seconds=6), _error_message(bombed)
    )
    assert "fork refused: Resource temporarily unavailable" in _logs(bombed)
    assert _container_gone(docker_backend, bombed)
    after = healthy(function)
    assert json.loads(after.response) == "calm"
    assert after.init_duration_ms is not None, "a fresh environment replaces the bombed one"


def test_memory_bomb_is_the_runtimes_exit(user, docker_backend, healthy):
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
        timeout=3,
    )

    bombed = invoke(function, '{"bomb": true}')

    assert bombed.error_type == "Runtime.ExitError"
    assert _error_message(bombed) == (
        f"RequestId: {bombed.request_id} Error: Runtime exited with error: signal: killed"
    )
    assert bombed.max_memory_used_mb == 128
    assert _container_gone(docker_backend, bombed)
    assert json.loads(healthy(function).response) == "fine"


def test_memory_bomb_in_a_child_process_is_the_handlers_business(user, healthy):
    function = make_function(
        user,
        """
        import os

        def lambda_handler(event, context):
            if not event.get("bomb"):
                return "fine"
            pid = os.fork()
            if pid == 0:
                blocks = []
                while True:
                    blocks.append(b"x" * (8 * 1024 * 1024))
            _, status = os.waitpid(pid, 0)
            return {"child_killed_by": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
        """,
        memory_size=128,
        timeout=3,
    )

    bombed = invoke(function, '{"bomb": true}')

    assert bombed.status == "succeeded", bombed.response
    assert json.loads(bombed.response) == {"child_killed_by": 9}
    after = healthy(function)
    assert json.loads(after.response) == "fine"
    assert after.init_duration_ms is None, "the environment survives its child's death"
    assert after.log_stream_name == bombed.log_stream_name


@pytest.mark.parametrize(
    "body",
    ["while True: pass", "time.sleep(30)"],
    ids=["infinite-loop", "sleep-past-the-timeout"],
)
def test_running_past_the_timeout_kills_the_container(user, docker_backend, healthy, body):
    function = make_function(
        user,
        f"""
        import time

        def lambda_handler(event, context):
            if event.get("stall"):
                {body}
            return "prompt"
        """,
        timeout=1,
    )

    stalled = invoke(function, '{"stall": true}')

    assert stalled.error_type == "Sandbox.Timedout"
    assert re.fullmatch(
        TIMED_OUT_RE.format(id=stalled.request_id, seconds=1), _error_message(stalled)
    )
    assert _container_gone(docker_backend, stalled)
    assert json.loads(healthy(function).response) == "prompt"


def test_filling_tmp_ends_in_enospc_at_the_cap_not_in_memory(user, healthy):
    function = make_function(
        user,
        """
        import os

        def lambda_handler(event, context):
            if not event.get("fill"):
                return sorted(os.listdir("/tmp"))
            chunk = b"x" * (1024 * 1024)
            written = 0
            try:
                with open("/tmp/filler", "wb") as file:
                    while True:
                        written += file.write(chunk)
            except OSError as exc:
                error = exc.strerror
            os.remove("/tmp/filler")
            # With /tmp in memory, the memory limit would have ended this long ago.
            ballast = bytearray(64 * 1024 * 1024)
            return {"error": error, "written_mb": written / (1024 * 1024), "ballast": len(ballast)}
        """,
        memory_size=128,
        ephemeral_storage=512,
        timeout=10,
    )

    filled = invoke(function, '{"fill": true}')

    assert filled.status == "succeeded", filled.response
    result = json.loads(filled.response)
    assert result["error"] == "No space left on device"
    assert 510 <= result["written_mb"] <= 512
    assert result["ballast"] == 64 * MB
    assert json.loads(healthy(function).response) == []


def test_writing_outside_tmp_is_refused(user, healthy):
    function = make_function(
        user,
        """
        def attempt(path):
            try:
                with open(path, "w") as file:
                    file.write("x")
            except OSError as exc:
                return exc.strerror
            return "written"

        def lambda_handler(event, context):
            paths = ["/escape", "/etc/passwd", "/var/task/lambda_function.py",
                     "/var/runtime/bootstrap", "/var/tmp/escape", "/usr/bin/python3"]
            return {path: attempt(path) for path in paths}
        """,
    )

    attempted = invoke(function)

    assert attempted.status == "succeeded", attempted.response
    outcomes = json.loads(attempted.response)
    assert outcomes == dict.fromkeys(outcomes, "Read-only file system")
    healthy(function)


def test_printing_forever_is_capped_and_ends_at_the_timeout(user, healthy, docker_backend):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            line = "spam " * 200
            while event.get("spam"):
                print(line)
            return "quiet"
        """,
        timeout=2,
    )
    rss_before = _rss_bytes()

    spammed = invoke(function, '{"spam": true}')

    assert spammed.error_type == "Sandbox.Timedout"
    assert re.fullmatch(
        TIMED_OUT_RE.format(id=spammed.request_id, seconds=2), _error_message(spammed)
    )
    lines = _logs(spammed)
    marker = f"[Stratus] Log output truncated: over {settings.STRATUS_MAX_LOG_BYTES} bytes"
    assert any(line.startswith(marker) for line in lines)
    assert sum(len(line) for line in lines) < settings.STRATUS_MAX_LOG_BYTES + 4096
    assert _rss_bytes() - rss_before < 64 * MB, "the worker keeps only the capped output"
    assert _container_gone(docker_backend, spammed)
    assert json.loads(healthy(function).response) == "quiet"


@contextlib.contextmanager
def _console_stand_in() -> Iterator[int]:
    """An HTTP server on all of the host's addresses, as a console or admin port would be,
    on a free port outside the Runtime API range."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _free_port_in(ports: PortRange, host: str) -> int:
    for port in random.sample(ports.as_range(), 50):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {ports}")


def test_the_host_and_its_services_are_out_of_reach(user, backend, healthy):
    function = make_function(
        user,
        """
        import os
        import socket
        from concurrent.futures import ThreadPoolExecutor

        def attempt(host, port):
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    return "connected"
            except TimeoutError:
                return "timed out"
            except ConnectionRefusedError:
                return "refused"
            except OSError as exc:
                return exc.strerror or type(exc).__name__

        def lambda_handler(event, context):
            if not event:
                return "contained"
            gateway = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")[0]
            targets = {
                "postgres on the container's loopback": ("127.0.0.1", 5432),
                "postgres": (gateway, 5432),
                "redis": (gateway, 6379),
                "console": (gateway, event["console_port"]),
                "docker api": (gateway, 2375),
                "closed runtime api port": (gateway, event["closed_api_port"]),
            }
            with ThreadPoolExecutor(len(targets)) as pool:
                futures = {name: pool.submit(attempt, *target) for name, target in targets.items()}
            sockets = ["/var/run/docker.sock", "/run/docker.sock", "/tmp/docker.sock"]
            return {
                "gateway": gateway,
                "connections": {name: future.result() for name, future in futures.items()},
                "docker sockets": [path for path in sockets if os.path.exists(path)],
            }
        """,
        timeout=5,
    )
    gateway = backend.runtime_api_bind_host
    closed_api_port = _free_port_in(backend.runtime_api_ports, gateway)

    with _console_stand_in() as console_port:
        assert console_port not in backend.runtime_api_ports
        with urllib.request.urlopen(f"http://{gateway}:{console_port}/", timeout=5) as page:
            assert page.status == 200, "the stand-in answers on the gateway address"
        probed = invoke(
            function, json.dumps({"console_port": console_port, "closed_api_port": closed_api_port})
        )

    assert probed.status == "succeeded", probed.response
    result = json.loads(probed.response)
    assert result["gateway"] == gateway
    assert result["connections"] == {
        # Nothing of the host is on the container's own loopback.
        "postgres on the container's loopback": "refused",
        # The firewall drops these: no answer at all, not even a refusal.
        "postgres": "timed out",
        "redis": "timed out",
        "console": "timed out",
        "docker api": "timed out",
        # The Runtime API ports are let through: a closed one answers with a refusal.
        "closed runtime api port": "refused",
    }
    assert result["docker sockets"] == []
    healthy(function)


def test_another_functions_code_is_out_of_reach(user, healthy):
    marker = f"victim-{uuid.uuid4().hex}"
    victim = make_function(
        user,
        f"""
        # {marker}
        def lambda_handler(event, context):
            return "mine"
        """,
        name="victim",
    )
    assert invoke(victim).status == "succeeded"
    victim_code = code_cache.code_dir(victim.code_id)
    assert (victim_code / "lambda_function.py").is_file()
    thief = make_function(
        user,
        """
        import os

        def lambda_handler(event, context):
            if not event:
                return "honest"
            found = []
            for root, folders, files in os.walk("/"):
                if root == "/":
                    folders[:] = [f for f in folders if f not in ("proc", "sys", "dev")]
                for name in files:
                    path = os.path.join(root, name)
                    try:
                        with open(path, "rb") as file:
                            if event["needle"].encode() in file.read(1024 * 1024):
                                found.append(path)
                    except OSError:
                        pass
            return {
                "task": sorted(os.listdir("/var/task")),
                "victim code visible": os.path.exists(event["victim_code"]),
                "code cache visible": os.path.exists(event["code_cache"]),
                "found": found,
            }
        """,
        name="thief",
        timeout=10,
    )

    searched = invoke(
        thief,
        json.dumps(
            {
                "victim_code": str(victim_code),
                "code_cache": str(victim_code.parent),
                "needle": marker,
            }
        ),
    )

    assert searched.status == "succeeded", searched.response
    assert json.loads(searched.response) == {
        "task": ["lambda_function.py"],
        "victim code visible": False,
        "code cache visible": False,
        "found": [],
    }
    healthy(thief)
    assert json.loads(invoke(victim).response) == "mine"


def test_the_environment_holds_only_lambdas_and_the_functions_variables(user, healthy):
    function = make_function(
        user,
        """
        import os

        def lambda_handler(event, context):
            with open("/proc/1/environ", "rb") as file:
                first_process = dict(
                    entry.decode().split("=", 1) for entry in file.read().split(b"\\0") if entry
                )
            return {"own": dict(os.environ), "process 1": first_process}
        """,
        environment={"GREETING": "hi"},
    )

    dumped = invoke(function)

    assert dumped.status == "succeeded", dumped.response
    result = json.loads(dumped.response)
    secrets = {
        settings.SECRET_KEY,
        *(os.environ.get(n) for n in ("DATABASE_URL", "CELERY_BROKER_URL")),
    }
    secrets.discard(None)
    for variables in (result["own"], result["process 1"]):
        assert set(variables) - docker_tests.LAMBDA_VARIABLES == {"GREETING"}
        assert variables["GREETING"] == "hi"
        assert not secrets & set(variables.values())
        assert not any(str(settings.BASE_DIR) in value for value in variables.values())
    healthy(function)


def test_mount_unshare_and_raw_sockets_are_refused(user, healthy):
    function = make_function(
        user,
        """
        import ctypes
        import errno
        import os
        import socket

        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000

        def outcome(result):
            return "done" if result == 0 else errno.errorcode[ctypes.get_errno()]

        def open_socket(*arguments):
            try:
                socket.socket(*arguments).close()
            except OSError as exc:
                return errno.errorcode[exc.errno]
            return "done"

        def lambda_handler(event, context):
            if not event:
                return "harmless"
            return {
                "mount": outcome(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
                "unshare user": outcome(libc.unshare(CLONE_NEWUSER)),
                "unshare mount": outcome(libc.unshare(CLONE_NEWNS)),
                "unshare net": outcome(libc.unshare(CLONE_NEWNET)),
                "raw socket": open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                "packet socket": open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0),
                "setuid root": outcome(libc.setuid(0)),
            }
        """,
    )

    attempted = invoke(function, '{"escape": true}')

    assert attempted.status == "succeeded", attempted.response
    outcomes = json.loads(attempted.response)
    assert outcomes == dict.fromkeys(outcomes, "EPERM")
    assert len(outcomes) == 7
    assert json.loads(healthy(function).response) == "harmless"


def test_open_files_stop_at_emfile(user, healthy):
    function = make_function(
        user,
        """
        import resource

        def lambda_handler(event, context):
            files = []
            try:
                while True:
                    files.append(open("/dev/null"))
            except OSError as exc:
                error = exc.strerror
            finally:
                for file in files:
                    file.close()
            return {
                "error": error,
                "opened": len(files),
                "limit": resource.getrlimit(resource.RLIMIT_NOFILE),
            }
        """,
    )

    exhausted = invoke(function)

    assert exhausted.status == "succeeded", exhausted.response
    result = json.loads(exhausted.response)
    assert result["error"] == "Too many open files"
    assert result["limit"] == [1024, 1024]
    assert 1000 <= result["opened"] < 1024
    after = healthy(function)
    assert after.init_duration_ms is None, "closing them leaves the environment usable"


def test_files_left_in_tmp_are_not_in_a_fresh_environment(user, healthy):
    function = make_function(
        user,
        """
        import os

        PLACES = ["/tmp", "/dev/shm"]

        def lambda_handler(event, context):
            token = event["token"]
            if event.get("write"):
                for place in PLACES:
                    with open(os.path.join(place, token), "w") as file:
                        file.write("left behind")
            return {
                "found": [p for p in PLACES if os.path.exists(os.path.join(p, token))],
                "tmp": sorted(os.listdir("/tmp")),
            }
        """,
    )
    token = f"leftover-{uuid.uuid4().hex}"

    wrote = invoke(function, json.dumps({"token": token, "write": True}))
    warm = invoke(function, json.dumps({"token": token}))
    environments.shutdown_pool()
    fresh = invoke(function, json.dumps({"token": token}))

    assert wrote.status == "succeeded", wrote.response
    assert json.loads(warm.response)["found"] == ["/tmp", "/dev/shm"], "same EE keeps /tmp"
    assert warm.log_stream_name == wrote.log_stream_name
    assert fresh.init_duration_ms is not None and fresh.log_stream_name != wrote.log_stream_name
    assert json.loads(fresh.response) == {"found": [], "tmp": []}
    healthy(function, json.dumps({"token": token}))
