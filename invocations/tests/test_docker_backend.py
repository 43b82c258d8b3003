"""The invocation engine end to end on the Docker backend: real containers of the runtime
image, hardened, with output, exits, memory and timeouts read back from the engine; the
host firewall for the functions' bridge; and the disk-backed scratch volumes for /tmp.
Attacks by function code are in test_hostile_code.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from django.core.management import call_command

from invocations import environments
from invocations.sandboxes import get_backend
from invocations.sandboxes.base import EnvironmentSpec, SandboxError
from invocations.sandboxes.docker import (
    CONTAINER_PREFIX,
    WORKER_LABEL,
    WORKER_STARTED_LABEL,
    DockerSandbox,
    DockerSandboxBackend,
    _owner_tag_alive,
    _process_start_time,
    _worker_owner_tag,
    describe_exit_code,
    docker_api,
)
from invocations.sandboxes.network import (
    FORWARD_CHAIN,
    INPUT_CHAIN,
    FirewallError,
    FirewallPolicy,
    PortRange,
    firewall_install,
    firewall_policies,
)
from invocations.sandboxes.scratch import ScratchVolumes
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


RUNTIME_API_PORTS = "20000-29999"


@pytest.fixture
def docker_backend(settings, docker_client) -> Iterator[docker.APIClient]:
    """The engine runs on the Docker backend for this test; its pool starts and ends empty.
    The Runtime API servers listen in the ports the firewall lets functions reach."""
    settings.STRATUS_SANDBOX = {"BACKEND": BACKEND, "OPTIONS": {}}
    settings.STRATUS_RUNTIME_API_PORTS = RUNTIME_API_PORTS
    # Containers started for their function only; stem cells are test_stem_cells.py's.
    settings.STRATUS_EE_PREWARM = ""
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
    assert not host.get("Tmpfs"), "/tmp must not be a tmpfs: it would count as memory"
    binds = {m["Destination"]: m for m in container["Mounts"] if m["Type"] == "bind"}
    assert {path: m["RW"] for path, m in binds.items()} == {
        "/var/task": False,
        "/tmp": True,
        "/var/runtime/output": False,
    }
    assert os.path.ismount(binds["/tmp"]["Source"]), "/tmp is a scratch filesystem of its own"
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
            with open("/proc/self/mounts") as mounts:
                tmp_mount = [line.split() for line in mounts if line.split()[1] == "/tmp"]
            return {
                "tmp_mount": tmp_mount,
                "tmp_free_mb": tmp.f_bavail * tmp.f_frsize / (1024 * 1024),
                "tmp_owner": [os.stat("/tmp").st_uid, os.stat("/tmp").st_gid],
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
    assert 511.9 <= seen["tmp_free_mb"] <= 512
    assert seen["tmp_owner"] == [993, 990]
    ((_, _, filesystem, options, *_),) = seen["tmp_mount"]
    assert filesystem == "ext4"
    assert {"rw", "nosuid", "nodev"} <= set(options.split(","))
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


def test_a_stopped_environment_closes_its_output_stream(docker_backend, tmp_path):
    (tmp_path / "lambda_function.py").write_text(HELLO)
    spec = _spec("stream", tmp_path)
    sandbox = get_backend().start(spec, runtime_api_port=20000)
    assert isinstance(sandbox, DockerSandbox)
    stream = sandbox._stream

    sandbox.stop()

    # Closed for real, not only marked closed while the SDK's file object keeps it open: an
    # open stream nobody reads stalls the engine as soon as it is full.
    assert stream.fileno() == -1
    assert not _containers_named(docker_backend, CONTAINER_PREFIX + spec.environment_id)


def _spec(name: str, code_dir: Path, **overrides: Any) -> EnvironmentSpec:
    fields: dict[str, Any] = {
        "environment_id": f"test-{name}-{uuid.uuid4().hex[:8]}",
        "runtime": "python3.11",
        "handler": "lambda_function.lambda_handler",
        "code_dir": code_dir,
        "memory_size": 128,
        "timeout": 3,
        "ephemeral_storage": 512,
        **overrides,
    }
    return EnvironmentSpec(**fields)


def _iptables(*arguments: str) -> list[str]:
    listing = subprocess.run(
        ["iptables", "-w", "-S", *arguments], capture_output=True, text=True, check=True
    )
    return listing.stdout.splitlines()


def test_the_firewall_is_installed_once_and_only_for_the_bridge(docker_backend):
    backend = get_backend()
    assert isinstance(backend, DockerSandboxBackend)
    (policy,) = firewall_policies(
        bridge=backend.bridge_name,
        gateways=[backend.runtime_api_bind_host],
        runtime_api_ports=backend.runtime_api_ports,
    )

    DockerSandboxBackend()  # a second worker starting: installs the same rules again

    jump_in = f"-A INPUT -i {backend.bridge_name} -j {INPUT_CHAIN}"
    jump_forward = f"-A DOCKER-USER -i {backend.bridge_name} -j {FORWARD_CHAIN}"
    assert _iptables("INPUT")[1] == jump_in, "first in INPUT"
    assert _iptables("DOCKER-USER")[1] == jump_forward, "first in DOCKER-USER"
    everything = _iptables()
    assert everything.count(jump_in) == everything.count(jump_forward) == 1
    ours = [line for line in everything if INPUT_CHAIN in line or FORWARD_CHAIN in line]
    jumps = [
        line
        for line in ours
        if not line.startswith(("-N", f"-A {INPUT_CHAIN}", f"-A {FORWARD_CHAIN}"))
    ]
    assert jumps == [jump_in, jump_forward], "reached only from the bridge"
    gateway = backend.runtime_api_bind_host
    assert _iptables(INPUT_CHAIN)[1:] == [
        f"-A {INPUT_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {INPUT_CHAIN} -d {gateway}/32 -p tcp -m tcp --dport 20000:29999 -j ACCEPT",
        f"-A {INPUT_CHAIN} -j DROP",
    ]
    forward = _iptables(FORWARD_CHAIN)[1:]
    assert forward == policy.forward_rules()
    assert forward[0] == f"-A {FORWARD_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
    ):
        assert f"-A {FORWARD_CHAIN} -d {network} -j DROP" in forward
    assert forward[-1] == f"-A {FORWARD_CHAIN} -j RETURN"


def test_firewall_policy_blocks_local_networks_and_keeps_private_name_servers(tmp_path):
    route_table = tmp_path / "route"
    route_table.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        # default route via 198.51.100.1 on eth0: not a network of its own
        "eth0\t00000000\t016433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        # 198.51.100.0/24 on eth0, directly attached: the local network
        "eth0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        # 10.1.0.0/16 on eth1: inside 10.0.0.0/8 already
        "eth1\t0000010A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        # the functions' own bridge
        "fnbr0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    )
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("nameserver 10.1.2.3\nnameserver 9.9.9.9\nnameserver fd00::53\n")

    ipv4, ipv6 = firewall_policies(
        bridge="fnbr0",
        gateways=["172.18.0.1", "fd00:1::1"],
        runtime_api_ports=PortRange.parse("21000-21999"),
        route_table=route_table,
        resolv_conf=resolv_conf,
    )

    assert ipv4.command == "iptables" and ipv6.command == "ip6tables"
    assert ipv4.blocked_networks == (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
        "198.51.100.0/24",
    )  # fmt: skip
    assert ipv4.name_servers == ("10.1.2.3",), "a public name server needs no exception"
    assert f"-A {FORWARD_CHAIN} -d 10.1.2.3/32 -p udp -m udp --dport 53 -j RETURN" in (
        ipv4.forward_rules()
    )
    assert f"-A {INPUT_CHAIN} -d 172.18.0.1/32 -p tcp -m tcp --dport 21000:21999 -j ACCEPT" in (
        ipv4.input_rules()
    )
    assert ipv6.blocked_networks == ("fc00::/7", "fe80::/10")
    assert ipv6.name_servers == ("fd00::53",)
    assert f"-A {INPUT_CHAIN} -d fd00:1::1/128 -p tcp -m tcp --dport 21000:21999 -j ACCEPT" in (
        ipv6.input_rules()
    )


@pytest.mark.parametrize("text", ["", "20000-", "29999-20000", "0-10", "20000-70000", "a-b"])
def test_malformed_port_ranges_are_refused(text):
    with pytest.raises(ValueError, match="not a port range"):
        PortRange.parse(text)


def test_a_port_range_reads_like_the_setting():
    ports = PortRange.parse("20000-29999")
    assert (ports.first, ports.last, str(ports), ports.iptables) == (
        20000, 29999, "20000-29999", "20000:29999",
    )  # fmt: skip
    assert 20000 in ports and 29999 in ports and 30000 not in ports
    assert ports.as_range() == range(20000, 30000)
    assert PortRange.parse("8080").iptables == "8080"


def test_a_runtime_api_port_the_firewall_drops_is_refused_up_front(docker_backend, tmp_path):
    with pytest.raises(SandboxError, match="outside 20000-29999"):
        get_backend().start(_spec("port", tmp_path), runtime_api_port=45000)


def test_a_missing_iptables_is_an_error_not_an_open_network():
    policy = FirewallPolicy(
        bridge="fnbr0",
        command="iptables-that-does-not-exist",
        gateway="172.18.0.1",
        runtime_api_ports=PortRange.parse("20000-29999"),
        blocked_networks=("10.0.0.0/8",),
    )
    with pytest.raises(FirewallError, match="not installed"):
        firewall_install(policy)


@pytest.fixture
def scratch_volumes(tmp_path) -> Iterator[ScratchVolumes]:
    volumes = ScratchVolumes(root=tmp_path / "scratch", owner="live", uid=993, gid=990)
    yield volumes
    volumes.remove_orphans(owner_alive=lambda owner: False)
    for mountpoint in [p for p in volumes.folder.glob("*") if os.path.ismount(p)]:
        subprocess.run(["umount", str(mountpoint)], check=False)


@pytest.mark.parametrize("size_mb", [512, 700])
def test_a_scratch_volume_offers_exactly_its_size_on_its_own_filesystem(scratch_volumes, size_mb):
    volume = scratch_volumes.create("sized", size_mb)

    usage = os.statvfs(volume.mountpoint)
    assert usage.f_blocks * usage.f_frsize == size_mb * MB
    assert usage.f_bavail * usage.f_frsize >= size_mb * MB - 64 * 1024
    status = os.stat(volume.mountpoint)
    assert (status.st_uid, status.st_gid, oct(status.st_mode & 0o7777)) == (993, 990, "0o1777")
    assert os.listdir(volume.mountpoint) == []
    options = _mount_options(volume.mountpoint)
    assert {"rw", "nosuid", "nodev", "noatime"} <= options
    assert os.stat(volume.image).st_blocks * 512 < 64 * MB, "the file is sparse"
    assert oct(os.stat(scratch_volumes.folder).st_mode & 0o777) == "0o700"

    volume.remove()
    volume.remove()

    assert not volume.mountpoint.exists() and not volume.image.exists()


def test_each_scratch_volume_starts_empty(scratch_volumes):
    first = scratch_volumes.create("first", 512)
    (first.mountpoint / "secret").write_text("left behind")
    first.remove()

    second = scratch_volumes.create("first", 512)

    assert os.listdir(second.mountpoint) == []
    second.remove()


def test_scratch_volumes_of_dead_workers_are_removed(tmp_path, scratch_volumes):
    root = scratch_volumes.root
    dead = ScratchVolumes(root=root, owner="dead", uid=993, gid=990)
    orphan = dead.create("orphan", 512)
    kept = scratch_volumes.create("kept", 512)
    alive_elsewhere = ScratchVolumes(root=root, owner="elsewhere", uid=993, gid=990)
    other = alive_elsewhere.create("other", 512)

    removed = scratch_volumes.remove_orphans(owner_alive=lambda owner: owner == "elsewhere")

    assert removed == 1
    assert not os.path.ismount(orphan.mountpoint) and not dead.folder.exists()
    assert os.path.ismount(kept.mountpoint) and os.path.ismount(other.mountpoint)
    other.remove()
    kept.remove()


def test_a_worker_owner_tag_names_a_live_process_only_while_it_runs():
    assert _owner_tag_alive(_worker_owner_tag())
    assert not _owner_tag_alive(f"{_dead_pid()}-1")
    assert not _owner_tag_alive(f"{os.getpid()}-1"), "a reused pid is another process"


def test_tmp_can_stay_in_memory_where_loop_devices_are_not_available(
    settings, docker_backend, tmp_path
):
    settings.STRATUS_SANDBOX = {"BACKEND": BACKEND, "OPTIONS": {"tmp_storage": "memory"}}
    get_backend.cache_clear()
    (tmp_path / "lambda_function.py").write_text(HELLO)
    backend = get_backend()
    assert isinstance(backend, DockerSandboxBackend) and backend.scratch is None
    spec = _spec("memory", tmp_path)
    sandbox = backend.start(spec, runtime_api_port=20000)
    try:
        host = docker_backend.inspect_container(CONTAINER_PREFIX + spec.environment_id)[
            "HostConfig"
        ]
        assert "size=512m" in host["Tmpfs"]["/tmp"]
    finally:
        sandbox.stop()
    with pytest.raises(SandboxError, match="tmp_storage"):
        DockerSandboxBackend(tmp_storage="ramdisk")


def _mount_options(mountpoint: Path) -> set[str]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mountpoint):
            return set(fields[3].split(","))
    raise AssertionError(f"{mountpoint} is not mounted")


def test_output_printed_before_returning_is_in_its_invocations_log(user, docker_backend):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            for number in range(200):
                print(f"line {number} of {event['round']}")
            return event["round"]
        """,
    )

    for round_number in range(5):
        invocation = invoke(function, json.dumps({"round": round_number}))

        lines = log_messages_for_invocation(request_id=invocation.request_id)
        start = lines.index(f"START RequestId: {invocation.request_id} Version: $LATEST")
        end = lines.index(f"END RequestId: {invocation.request_id}")
        assert lines[start + 1 : end] == [f"line {n} of {round_number}" for n in range(200)]


def test_a_dead_workers_scratch_volumes_go_with_its_containers(docker_backend):
    backend = get_backend()
    assert isinstance(backend, DockerSandboxBackend) and backend.scratch is not None
    dead_worker = ScratchVolumes(
        root=backend.scratch.root, owner=f"{_dead_pid()}-1", uid=993, gid=990
    )
    orphan = dead_worker.create("orphan", 512)
    (dead_worker.folder / "orphan.output").touch()
    # A stem cell's task root, read-only once it was given a function's code.
    stem_task = dead_worker.folder / "orphan.task"
    stem_task.mkdir()
    (stem_task / "lambda_function.py").write_text("")
    stem_task.chmod(0o555)
    own = backend.scratch.create("own", 512)

    try:
        backend.remove_orphans()

        assert not os.path.ismount(orphan.mountpoint)
        assert not dead_worker.folder.exists()
        assert os.path.ismount(own.mountpoint), "a live worker's volumes stay"
    finally:
        own.remove()


@pytest.mark.django_db(transaction=True)  # the pool's own thread reads the code package
def test_a_provisioned_container_runs_its_init_ahead_and_logs_it_with_its_first_call(
    user, docker_backend
):
    from invocations.services import _snapshot

    function = make_function(
        user,
        """
        import os, time

        print("Loading function")
        time.sleep(0.3)

        def lambda_handler(event, context):
            return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
        """,
        name="provisioned",
    )
    snapshot = _snapshot(function, None, invoked_as="$LATEST")
    pool = environments.get_pool()
    pool.set_provisioned(snapshot, 1)
    give_up = time.monotonic() + 30
    while pool.provisioned_status() != {snapshot.pool_key: (1, 1)}:
        assert time.monotonic() < give_up, pool.stats()
        time.sleep(0.05)

    first = invoke(function)
    second = invoke(function)

    assert json.loads(first.response) == "provisioned-concurrency"
    assert first.init_duration_ms is None
    lines = log_messages_for_invocation(request_id=first.request_id)
    assert lines[:2] == [
        "Loading function",
        f"START RequestId: {first.request_id} Version: $LATEST",
    ]
    assert "Init Duration" not in lines[-1]
    assert second.log_stream_name == first.log_stream_name
    assert "Loading function" not in log_messages_for_invocation(request_id=second.request_id)
    assert pool.stats()["provisioned_hits"] == 2 and pool.stats()["cold_starts"] == 0
    pool.set_provisioned(snapshot, 0)
    assert pool.provisioned_status() == {}
    assert not _containers_named(docker_backend, _container_name(first.log_stream_name))
