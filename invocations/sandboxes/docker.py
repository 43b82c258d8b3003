"""The Docker backend: each execution environment is a container of its runtime's image.

The container runs as Lambda's unprivileged user with a read-only root, the function's code
mounted read-only at /var/task, a disk-backed /tmp capped at the function's ephemeral
storage (see scratch.py), memory without swap, CPU in proportion to memory, and no
capabilities. It sits on its own bridge network, where it reaches the worker's Runtime API
at the bridge's gateway address and, through the host firewall (see network.py), nothing
else of the host or the local network. The runtime's output comes through a named pipe
(see OutputPipe), the rest of the container's through its attach stream; both are open
before the container starts, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import math
import os
import select
import shutil
import signal
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import docker.utils
import requests
from django.conf import settings

from invocations.runtimes import (
    LAMBDA_GID,
    LAMBDA_UID,
    OUTPUT_PIPE_PATH,
    UnknownRuntime,
    has_stem,
    recipe_for,
)
from invocations.sandboxes.base import EnvironmentSpec, Sandbox, SandboxBackend, SandboxError
from invocations.sandboxes.network import (
    DEFAULT_RUNTIME_API_PORTS,
    PortRange,
    firewall_install,
    firewall_policies,
)
from invocations.sandboxes.process import describe_exit
from invocations.sandboxes.scratch import ScratchVolume, ScratchVolumes

logger = logging.getLogger(__name__)

NETWORK_NAME = "stratus-functions"
BRIDGE_NAME = "stratus0"
CONTAINER_PREFIX = "stratus-ee-"
ENVIRONMENT_LABEL = "stratus.environment"
FUNCTION_LABEL = "stratus.function"
WORKER_LABEL = "stratus.worker"
WORKER_STARTED_LABEL = "stratus.worker-started"
#: Where /tmp lives: a scratch filesystem on disk, or a tmpfs (counted as memory; for hosts
#: where the worker cannot mount loop devices).
TMP_ON_DISK = "disk"
TMP_IN_MEMORY = "memory"

_MB = 1024 * 1024
# Lambda gives a function one vCPU at 1,769 MB and shares CPU in proportion to memory.
_MEMORY_PER_VCPU_MB = 1769
_READ_CHUNK = 64 * 1024
# Output an idle environment prints is kept for its next invocation, up to this much.
_IDLE_BUFFER_BYTES = 1024 * 1024
_PIPE_BYTES = 1024 * 1024
_FRAME_HEADER_BYTES = 8
_REMOVE_TIMEOUT_SECONDS = 10.0
# After the stream ends, how often the engine is asked whether the runtime has exited.
_EXIT_POLL_SECONDS = 0.05
_ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)
_CGROUP_ROOT = Path("/sys/fs/cgroup")
# Where the Docker engine puts a container's memory cgroup, by cgroup version and driver.
_PEAK_MEMORY_FILES = (
    "system.slice/docker-{id}.scope/memory.peak",
    "docker/{id}/memory.peak",
    "memory/docker/{id}/memory.max_usage_in_bytes",
    "memory/system.slice/docker-{id}.scope/memory.max_usage_in_bytes",
)


def docker_api(timeout: int = 60) -> docker.APIClient:
    """A low-level client for the engine named by DOCKER_HOST (default: the local socket)."""
    try:
        return docker.APIClient(version="auto", timeout=timeout, **docker.utils.kwargs_from_env())
    except docker.errors.DockerException as exc:
        raise SandboxError(
            f"the Docker engine is not reachable ({exc}); start dockerd and check DOCKER_HOST"
        ) from exc


def describe_exit_code(code: int) -> str:
    """Lambda's wording for a container's exit code (128 + n means killed by signal n)."""
    if code > 128:
        with contextlib.suppress(ValueError):
            return describe_exit(-signal.Signals(code - 128))
    return f"exit status {code}"


class OutputPipe:
    """A named pipe on the host, mounted at OUTPUT_PIPE_PATH, that the runtime writes its
    output to. Unlike the engine's attach stream, it keeps the order of the runtime's
    writes against its Runtime API requests: what a handler printed before returning is
    in the pipe before its response reaches the worker."""

    def __init__(self, path: Path, *, uid: int, gid: int) -> None:
        self.path = path
        self._closed = False
        descriptors: list[int] = []
        os.mkfifo(path, 0o600)
        try:
            os.chown(path, uid, gid)
            # Write-only for the function: reading it would take output from the worker, and
            # a program reading every file it finds would wait on it forever.
            os.chmod(path, 0o200)
            descriptors.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            # Held open so the pipe never reads as ended while no runtime writes to it
            # (select() would report it readable forever).
            descriptors.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except BaseException:
            for descriptor in descriptors:
                os.close(descriptor)
            path.unlink()
            raise
        self.fileno, self._keeper = descriptors
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.fileno, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)

    def read(self, limit: int | None) -> bytes:
        """What the pipe holds, up to `limit` bytes, without blocking."""
        chunks = bytearray()
        while not self._closed and (limit is None or len(chunks) < limit):
            try:
                chunk = os.read(self.fileno, _READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:
                break
            chunks += chunk
        return bytes(chunks)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._keeper)
        os.close(self.fileno)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class DockerSandbox(Sandbox):
    """Output comes from the runtime's pipe (if the backend made one) and from the attach
    stream (anything else in the container that writes to its stdout or stderr). The
    stream ends when the container does; one epoll descriptor watches both."""

    def __init__(
        self,
        *,
        api: docker.APIClient,
        environment_id: str,
        container_id: str,
        stream: socket.socket,
        memory_size: int,
        network: str,
        scratch: ScratchVolume | None = None,
        stream_owner: Any = None,
        output_pipe: OutputPipe | None = None,
        stem_code_dir: Path | None = None,
    ) -> None:
        self.environment_id = environment_id
        self.container_id = container_id
        self._network = network
        self._api = api
        self._stream = stream
        self._memory_size = memory_size
        self._lock = threading.RLock()
        self._received = bytearray()
        self._frame_remaining = 0
        self._eof = False
        self._next_exit_check = 0.0
        self._exit_reason: str | None = None
        self._oom_killed = False
        self._stopped = False
        self._peak_bytes = 0
        self._peak_file: Path | None = None
        self._peak_file_searched = False
        self._scratch = scratch
        # The SDK's file object over the stream: the socket's descriptor stays open until
        # this is closed too.
        self._stream_owner = stream_owner
        self._output_pipe = output_pipe
        self.stem_code_dir = stem_code_dir
        self._piped = bytearray()
        self._poller = select.epoll()
        self._poller.register(stream.fileno(), select.EPOLLIN)
        if output_pipe is not None:
            self._poller.register(output_pipe.fileno, select.EPOLLIN)

    def log_fileno(self) -> int:
        return self._poller.fileno()

    def read_output(self) -> bytes:
        with self._lock:
            self._receive(limit=None)
            self._record_peak_memory()
            output = self._demultiplex() + self._piped
            self._piped.clear()
            return output

    def exit_reason(self) -> str | None:
        """Asks the engine only once the attach stream has ended, and then at most every
        _EXIT_POLL_SECONDS, so that the executor may call this as often as it likes."""
        with self._lock:
            if self._exit_reason is not None:
                return self._exit_reason
            if not self._eof:
                self._receive(limit=_IDLE_BUFFER_BYTES)
            now = time.monotonic()
            if not self._eof or now < self._next_exit_check:
                return None
            self._next_exit_check = now + _EXIT_POLL_SECONDS
            self._exit_reason = self._inspect_exit()
            return self._exit_reason

    def runtime_client_address(self) -> str | None:
        try:
            details = self._api.inspect_container(self.container_id)
        except _ENGINE_ERRORS as exc:
            raise SandboxError(f"could not inspect container {self.container_id}: {exc}") from exc
        networks = (details.get("NetworkSettings") or {}).get("Networks") or {}
        address = (networks.get(self._network) or {}).get("IPAddress")
        if not address:
            raise SandboxError(f"container {self.container_id} has no address on {self._network}")
        return str(address)

    def max_memory_used_mb(self) -> int:
        with self._lock:
            if self._oom_killed:
                return self._memory_size
            self._record_peak_memory()
            return math.ceil(self._peak_bytes / _MB)

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._record_peak_memory()
            if self._exit_reason is None:
                self._exit_reason = describe_exit(-signal.SIGKILL)
            self._close_stream()
            try:
                _remove_container(self._api, self.container_id)
            finally:
                # After the container: its bind mount of the volume is gone with it.
                if self._scratch is not None:
                    self._scratch.remove()
                if self.stem_code_dir is not None:
                    shutil.rmtree(self.stem_code_dir, ignore_errors=True)
            self._stopped = True

    def _receive(self, *, limit: int | None) -> None:
        """Move what the pipe and the attach stream hold into the buffers, without
        blocking."""
        if self._output_pipe is not None:
            room = None if limit is None else max(0, limit - len(self._piped))
            if room != 0:
                self._piped += self._output_pipe.read(room)
        while not self._eof and (limit is None or len(self._received) < limit):
            try:
                chunk = self._stream.recv(_READ_CHUNK)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                # An ended stream reads as ready forever: stop watching it, so that
                # select() on the epoll descriptor does not spin.
                with contextlib.suppress(OSError, ValueError):
                    self._poller.unregister(self._stream.fileno())
                return
            self._received += chunk

    def _demultiplex(self) -> bytes:
        """The payload of Docker's stream frames: an 8-byte header (stream, size), then data.

        A frame cut between two reads is continued on the next one.
        """
        buffer = self._received
        output = bytearray()
        position = 0
        while position < len(buffer):
            if self._frame_remaining:
                take = min(self._frame_remaining, len(buffer) - position)
                output += buffer[position : position + take]
                position += take
                self._frame_remaining -= take
            elif len(buffer) - position >= _FRAME_HEADER_BYTES:
                header = buffer[position : position + _FRAME_HEADER_BYTES]
                self._frame_remaining = int.from_bytes(header[4:8], "big")
                position += _FRAME_HEADER_BYTES
            else:
                break
        del buffer[:position]
        return bytes(output)

    def _close_stream(self) -> None:
        """Close the output pipe and the attach stream for good. Shut the stream down
        first: while its descriptor is open, an engine writing to it would block once it is
        full, and so would the container's removal (a function printing forever would
        hang it)."""
        self._poller.close()
        if self._output_pipe is not None:
            self._output_pipe.close()
        with contextlib.suppress(OSError):
            self._stream.shutdown(socket.SHUT_RDWR)
        if self._stream_owner is not None:
            with contextlib.suppress(OSError):
                self._stream_owner.close()
        with contextlib.suppress(OSError):
            self._stream.close()

    def _inspect_exit(self) -> str | None:
        """Lambda's wording for how the container ended; None if it is still running (its
        stream can end a moment before the engine records the exit)."""
        try:
            state = self._api.inspect_container(self.container_id)["State"]
        except docker.errors.NotFound:
            return describe_exit(-signal.SIGKILL)
        except _ENGINE_ERRORS as exc:
            logger.warning("could not inspect container %s: %s", self.container_id, exc)
            return None
        if state.get("Running"):
            return None
        code = int(state.get("ExitCode") or 0)
        # OOMKilled is sticky and container-wide: it names the cause only with SIGKILL.
        self._oom_killed = bool(state.get("OOMKilled")) and code == 128 + signal.SIGKILL
        return describe_exit_code(code)

    def _record_peak_memory(self) -> None:
        peak_file = self._find_peak_file()
        if peak_file is None:
            return
        try:
            value = int(peak_file.read_text())
        except (OSError, ValueError):
            return
        self._peak_bytes = max(self._peak_bytes, value)

    def _find_peak_file(self) -> Path | None:
        if not self._peak_file_searched:
            self._peak_file_searched = True
            for pattern in _PEAK_MEMORY_FILES:
                candidate = _CGROUP_ROOT / pattern.format(id=self.container_id)
                if candidate.exists():
                    self._peak_file = candidate
                    break
            else:
                if not self._eof:
                    logger.warning("no memory cgroup for container %s", self.container_id)
        return self._peak_file


class DockerSandboxBackend(SandboxBackend):
    isolates = True

    def __init__(
        self,
        *,
        network: str = NETWORK_NAME,
        bridge_name: str = BRIDGE_NAME,
        # Lambda's share at 128 MB is 0.07 vCPU; below about half a CPU the runtime's own
        # start (30 to 60 ms of CPU, by host) is spread over several 100 ms CFS periods and
        # a cold start grows by half (measured: 391 ms at 0.25, 339 ms at 0.5 and 1).
        min_cpus: float = 0.5,
        pids_limit: int = 1024,
        open_files: int = 1024,
        log_max_size: str = "1m",
        oom_score_adj: int = 500,
        # The ports the worker's Runtime API servers listen on, e.g. "20000-29999"; the
        # firewall lets functions reach only these on the host. Default: the
        # STRATUS_RUNTIME_API_PORTS setting.
        runtime_api_ports: str | None = None,
        # Install the host firewall for the functions' bridge (needs root). Turn it off only
        # where the same rules are installed by other means.
        firewall: bool = True,
        # TMP_ON_DISK, or TMP_IN_MEMORY where the worker cannot mount loop devices.
        tmp_storage: str = TMP_ON_DISK,
        # Where scratch volumes are made. Default: STRATUS_SANDBOX_DIR/docker-scratch.
        scratch_dir: str | None = None,
    ) -> None:
        if tmp_storage not in (TMP_ON_DISK, TMP_IN_MEMORY):
            raise SandboxError(
                f"tmp_storage must be {TMP_ON_DISK!r} or {TMP_IN_MEMORY!r}, not {tmp_storage!r}"
            )
        self.api = docker_api()
        self.network = network
        self.min_cpus = min_cpus
        self.pids_limit = pids_limit
        self.open_files = open_files
        self.log_max_size = log_max_size
        self.oom_score_adj = oom_score_adj
        self.host_cpus = os.cpu_count() or 1
        try:
            self.runtime_api_ports = PortRange.parse(
                runtime_api_ports
                or str(getattr(settings, "STRATUS_RUNTIME_API_PORTS", DEFAULT_RUNTIME_API_PORTS))
            )
        except ValueError as exc:
            raise SandboxError(str(exc)) from exc
        details = _ensure_network(self.api, network, bridge_name)
        gateways = _gateways(details)
        self.runtime_api_bind_host = next((g for g in gateways if ":" not in g), gateways[0])
        self.bridge_name = _bridge_name(details)
        self.firewall = firewall
        if firewall:
            for policy in firewall_policies(
                bridge=self.bridge_name,
                gateways=gateways,
                runtime_api_ports=self.runtime_api_ports,
            ):
                firewall_install(policy)
        # This worker's folder on the host holds its environments' scratch volumes and
        # output pipes; a later worker removes it if this one dies.
        self._host_files = ScratchVolumes(
            root=Path(scratch_dir or Path(settings.STRATUS_SANDBOX_DIR) / "docker-scratch"),
            owner=_worker_owner_tag(),
            uid=LAMBDA_UID,
            gid=LAMBDA_GID,
        )
        self.scratch = self._host_files if tmp_storage == TMP_ON_DISK else None

    def start(self, spec: EnvironmentSpec, *, runtime_api_port: int) -> Sandbox:
        if self.firewall and runtime_api_port not in self.runtime_api_ports:
            raise SandboxError(
                f"Runtime API port {runtime_api_port} is outside {self.runtime_api_ports}, the "
                "ports the firewall lets functions reach: check STRATUS_RUNTIME_API_PORTS"
            )
        try:
            recipe = recipe_for(spec.runtime)
        except UnknownRuntime as exc:
            raise SandboxError(str(exc)) from exc
        if spec.stem and not recipe.has_stem:
            raise SandboxError(f"the {spec.runtime} runtime image has no stem program")
        image = recipe.image
        scratch = (
            self.scratch.create(spec.environment_id, spec.ephemeral_storage)
            if self.scratch is not None
            else None
        )
        output_pipe = None
        stem_code_dir = None
        try:
            folder = self._host_files.ensure_folder()
            output_pipe = OutputPipe(
                folder / f"{spec.environment_id}.output", uid=LAMBDA_UID, gid=LAMBDA_GID
            )
            command = None
            if spec.stem:
                # Its own folder, so that no stem cell ever sees another's code.
                stem_code_dir = folder / f"{spec.environment_id}.task"
                stem_code_dir.mkdir(mode=0o755)
                command = list(recipe.stem_command)
            return self._start_container(
                spec,
                image,
                runtime_api_port,
                scratch,
                output_pipe,
                command=command,
                stem_code_dir=stem_code_dir,
            )
        except BaseException as exc:
            if stem_code_dir is not None:
                shutil.rmtree(stem_code_dir, ignore_errors=True)
            if output_pipe is not None:
                output_pipe.close()
            if scratch is not None:
                scratch.remove()
            if isinstance(exc, OSError):
                raise SandboxError(
                    f"could not prepare environment {spec.environment_id}: {exc}"
                ) from exc
            raise

    def _start_container(
        self,
        spec: EnvironmentSpec,
        image: str,
        runtime_api_port: int,
        scratch: ScratchVolume | None,
        output_pipe: OutputPipe,
        *,
        command: list[str] | None,
        stem_code_dir: Path | None,
    ) -> DockerSandbox:
        name = f"{CONTAINER_PREFIX}{spec.environment_id}"
        added = {
            "AWS_LAMBDA_RUNTIME_API": f"{self.runtime_api_bind_host}:{runtime_api_port}",
            "LAMBDA_TASK_ROOT": "/var/task",
        }
        environment = {**spec.environment, **added}
        try:
            container = self.api.create_container(
                image,
                command=command,
                name=name,
                user=f"{LAMBDA_UID}:{LAMBDA_GID}",
                working_dir="/var/task",
                environment=environment,
                labels={**spec.labels, **self._worker_labels(spec)},
                host_config=self._host_config(spec, scratch, output_pipe, stem_code_dir),
                stdin_open=False,
                tty=False,
            )
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"the runtime image {image} is missing: run `manage.py build_runtimes`"
            ) from exc
        except _ENGINE_ERRORS as exc:
            raise SandboxError(f"could not create container {name}: {exc}") from exc
        container_id = str(container["Id"])
        attached: Any = None
        try:
            # Attached before it starts, so the runtime's first bytes are in the stream.
            attached = self.api.attach_socket(
                container_id, params={"stdout": 1, "stderr": 1, "stream": 1}
            )
            stream = _raw_socket(attached)
            stream.setblocking(False)
            self.api.start(container_id)
        except BaseException as exc:
            if attached is not None:
                with contextlib.suppress(OSError):
                    attached.close()
            _remove_container(self.api, container_id)
            if isinstance(exc, _ENGINE_ERRORS):
                raise SandboxError(f"could not start container {name}: {exc}") from exc
            raise
        sandbox = DockerSandbox(
            api=self.api,
            environment_id=spec.environment_id,
            container_id=container_id,
            stream=stream,
            stream_owner=attached,
            output_pipe=output_pipe,
            memory_size=spec.memory_size,
            network=self.network,
            scratch=scratch,
            stem_code_dir=stem_code_dir,
        )
        sandbox.backend_environment = added
        return sandbox

    def supports_stem(self, runtime: str) -> bool:
        return has_stem(runtime)

    def remove_orphans(self) -> int:
        """Remove containers of this host's workers that are no longer running.

        A worker is known by host name, pid and the pid's start time, so a new process that
        happens to reuse a dead worker's pid does not keep that worker's containers alive.
        """
        host = socket.gethostname()
        removed = 0
        try:
            containers = self.api.containers(all=True, filters={"label": WORKER_LABEL})
        except _ENGINE_ERRORS as exc:
            raise SandboxError(f"could not list containers: {exc}") from exc
        for container in containers:
            labels = container.get("Labels") or {}
            worker_host, _, pid_text = labels.get(WORKER_LABEL, "").rpartition(":")
            if worker_host != host or not pid_text.isdigit():
                continue
            if _worker_is_running(int(pid_text), labels.get(WORKER_STARTED_LABEL, "")):
                continue
            try:
                _remove_container(self.api, str(container["Id"]))
            except SandboxError:
                logger.exception("could not remove orphaned container %s", container["Id"])
                continue
            removed += 1
        # After the containers, which hold bind mounts of these volumes.
        self._host_files.remove_orphans(owner_alive=_owner_tag_alive)
        return removed

    def _worker_labels(self, spec: EnvironmentSpec) -> dict[str, str]:
        pid = os.getpid()
        return {
            ENVIRONMENT_LABEL: spec.environment_id,
            WORKER_LABEL: f"{socket.gethostname()}:{pid}",
            WORKER_STARTED_LABEL: _process_start_time(pid),
        }

    def _host_config(
        self,
        spec: EnvironmentSpec,
        scratch: ScratchVolume | None,
        output_pipe: OutputPipe,
        stem_code_dir: Path | None,
    ) -> dict[str, Any]:
        memory = spec.memory_size * _MB
        cpus = min(
            float(self.host_cpus), max(self.min_cpus, spec.memory_size / _MEMORY_PER_VCPU_MB)
        )
        mounts = [
            docker.types.Mount(
                "/var/task", str(stem_code_dir or spec.code_dir), type="bind", read_only=True
            ),
            # Read-only still lets the runtime write into the pipe.
            docker.types.Mount(
                OUTPUT_PIPE_PATH, str(output_pipe.path), type="bind", read_only=True
            ),
        ]
        tmpfs = {}
        if scratch is not None:
            # The bind mount keeps the volume's nosuid and nodev.
            mounts.append(docker.types.Mount("/tmp", str(scratch.mountpoint), type="bind"))
        else:
            tmpfs["/tmp"] = f"rw,exec,nosuid,nodev,size={spec.ephemeral_storage}m,mode=1777"
        host_config: dict[str, Any] = self.api.create_host_config(
            mounts=mounts,
            read_only=True,
            tmpfs=tmpfs,
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(cpus * 1e9),
            cpu_shares=max(2, round(1024 * spec.memory_size / _MEMORY_PER_VCPU_MB)),
            pids_limit=self.pids_limit,
            ulimits=[
                docker.types.Ulimit(name="nofile", soft=self.open_files, hard=self.open_files),
                docker.types.Ulimit(name="core", soft=0, hard=0),
            ],
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            oom_score_adj=self.oom_score_adj,
            network_mode=self.network,
            log_config=docker.types.LogConfig(
                type="json-file", config={"max-size": self.log_max_size, "max-file": "1"}
            ),
        )
        return host_config


def _ensure_network(api: docker.APIClient, name: str, bridge_name: str) -> dict[str, Any]:
    """Create the functions' bridge network if missing; return how the engine describes it."""
    network = _find_network(api, name)
    if network is None:
        try:
            api.create_network(
                name,
                driver="bridge",
                options={
                    # Containers on it cannot reach one another.
                    "com.docker.network.bridge.enable_icc": "false",
                    "com.docker.network.bridge.name": bridge_name,
                },
                labels={"stratus.network": "functions"},
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            # Another worker may have created it first.
            if exc.status_code != 409:
                raise SandboxError(f"could not create network {name}: {exc}") from exc
        network = _find_network(api, name)
    if network is None:
        raise SandboxError(f"network {name} could not be created")
    if (network.get("Options") or {}).get("com.docker.network.bridge.enable_icc") != "false":
        logger.warning("network %s lets its containers reach one another", name)
    return network


def _gateways(network: dict[str, Any]) -> list[str]:
    """The network's gateway addresses (one per address family)."""
    gateways = [
        str(config["Gateway"]).split("/")[0]
        for config in (network.get("IPAM") or {}).get("Config") or []
        if config.get("Gateway")
    ]
    if not gateways:
        raise SandboxError(f"network {network.get('Name')} has no gateway address")
    return gateways


def _bridge_name(network: dict[str, Any]) -> str:
    """The host interface of a bridge network: the name it was given, or Docker's default."""
    options = network.get("Options") or {}
    return str(options.get("com.docker.network.bridge.name") or f"br-{network['Id'][:12]}")


def _find_network(api: docker.APIClient, name: str) -> dict[str, Any] | None:
    # The name filter matches substrings; the oldest exact match wins if several exist.
    matches = [n for n in api.networks(names=[name]) if n.get("Name") == name]
    if not matches:
        return None
    oldest = min(matches, key=lambda n: str(n.get("Created", "")))
    network: dict[str, Any] = api.inspect_network(oldest["Id"])
    return network


def _raw_socket(attached: Any) -> socket.socket:
    """The socket under the SDK's attach stream (a SocketIO over a Unix or TCP socket)."""
    raw = getattr(attached, "_sock", attached)
    if not isinstance(raw, socket.socket):
        raise SandboxError("the Docker attach stream is not a socket (DOCKER_HOST over SSH?)")
    return raw


def _remove_container(api: docker.APIClient, container_id: str) -> None:
    """Kill and remove the container; return only once the engine no longer knows it."""
    give_up = time.monotonic() + _REMOVE_TIMEOUT_SECONDS
    while True:
        try:
            api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            # 409: a removal is already in progress; wait for it below.
            if exc.status_code != 409:
                raise SandboxError(f"could not remove container {container_id}: {exc}") from exc
        except requests.RequestException as exc:
            raise SandboxError(f"could not remove container {container_id}: {exc}") from exc
        try:
            api.inspect_container(container_id)
        except docker.errors.NotFound:
            return
        except _ENGINE_ERRORS as exc:
            raise SandboxError(f"could not check container {container_id}: {exc}") from exc
        if time.monotonic() > give_up:
            raise SandboxError(f"container {container_id} is still there after removal")
        time.sleep(0.05)


def _worker_owner_tag() -> str:
    """Names this worker process (pid and start time) in the scratch volumes' folder."""
    pid = os.getpid()
    return f"{pid}-{_process_start_time(pid)}"


def _owner_tag_alive(tag: str) -> bool:
    pid_text, _, started = tag.partition("-")
    if not pid_text.isdigit():
        return True
    return _worker_is_running(int(pid_text), started)


def _process_start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _worker_is_running(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return not started or _process_start_time(pid) == started
