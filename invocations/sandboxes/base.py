"""The sandbox backend contract.

A backend starts execution environments (EEs): isolated places where a runtime process polls
the worker's Runtime API for events. The worker chooses the backend with the
STRATUS_SANDBOX setting, the way Django chooses an email backend.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path


class SandboxError(Exception):
    """A sandbox could not be started or controlled."""


@dataclass(frozen=True)
class EnvironmentSpec:
    """Everything a backend needs to start one execution environment."""

    environment_id: str
    runtime: str
    handler: str
    code_dir: Path
    memory_size: int
    timeout: int
    ephemeral_storage: int
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    #: Start the runtime's stem program, not the runtime: a pre-warmed generic environment
    #: whose task root is an empty folder of its own (`Sandbox.stem_code_dir`), and whose
    #: `environment` and `handler` are neutral until it is assigned a function.
    stem: bool = False


class Sandbox(abc.ABC):
    """A running execution environment as the worker sees it."""

    environment_id: str
    #: A stem cell's task root on the host (empty until it is assigned a function); None
    #: for an environment started with its function's code.
    stem_code_dir: Path | None = None
    #: Variables the backend added to the spec's environment when it started the runtime
    #: (the Runtime API address, the task root, ...); a stem cell's assignment adds them too.
    backend_environment: dict[str, str]

    @abc.abstractmethod
    def log_fileno(self) -> int:
        """A file descriptor that select() reports readable when output is waiting."""

    @abc.abstractmethod
    def read_output(self) -> bytes:
        """Return the runtime's output that is waiting, without blocking; b"" if none.

        Returns b"" and sets exit status once the runtime has gone away.
        """

    @abc.abstractmethod
    def exit_reason(self) -> str | None:
        """None while the runtime runs; else Lambda's wording, e.g. "signal: killed"."""

    @abc.abstractmethod
    def max_memory_used_mb(self) -> int:
        """Peak memory of the environment so far, measured, in MB."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Kill the environment and return only once it is gone."""

    def runtime_client_address(self) -> str | None:
        """The only address the runtime's Runtime API requests may come from, or None when
        the backend cannot tell them apart (the process backend: all on loopback)."""
        return None


class SandboxBackend(abc.ABC):
    """Starts sandboxes. One instance lives in each worker process."""

    #: Whether function code is isolated from the host. The process backend is not.
    isolates: bool = False
    #: The address the worker's Runtime API servers listen on for this backend.
    runtime_api_bind_host: str = "127.0.0.1"

    @abc.abstractmethod
    def start(self, spec: EnvironmentSpec, *, runtime_api_port: int) -> Sandbox:
        """Start the runtime for `spec`, pointed at the Runtime API on `runtime_api_port`."""

    def supports_stem(self, runtime: str) -> bool:
        """Whether this backend can start stem cells (EnvironmentSpec.stem) of `runtime`."""
        return False

    def remove_orphans(self) -> int:
        """Remove environments a previous worker left behind; return how many."""
        return 0
