"""Execution environments (EEs): what the pool in invocations.environments holds.

An EE is a sandbox running one function version with one configuration, plus the Runtime
API endpoint it polls. It serves one invocation at a time; between invocations it waits
idle in the pool until reused, evicted to make room for another, or stopped after the
keep-alive.

An EE is either started for its function, or specialised from a stem cell (see
invocations.stem_cells): the function's code linked into the stem cell's task root, its
handler and environment handed over through the Runtime API. From then on it is an
ordinary EE of that function.
"""

from __future__ import annotations

import abc
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.conf import settings

from invocations import code_cache
from invocations.function_snapshot import FunctionSnapshot
from invocations.runtime_api import RuntimeApiServer
from invocations.sandboxes.base import EnvironmentSpec, Sandbox, SandboxBackend, SandboxError

if TYPE_CHECKING:
    from invocations.stem_cells import StemCell

ON_DEMAND = "on-demand"
PROVISIONED_CONCURRENCY = "provisioned-concurrency"

# Lambda's own values, the same for every function of a runtime.
RUNTIME_VARIABLES = {
    "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LANG": "en_US.UTF-8",
    "LD_LIBRARY_PATH": "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
}
RUNTIME_DIR_VARIABLES = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "TZ": ":UTC",
}


def lambda_environment(
    snapshot: FunctionSnapshot, log_stream_name: str, *, init_type: str = ON_DEMAND
) -> dict[str, str]:
    """The variables Lambda gives a function: its own, then the reserved ones (which win)."""
    return {
        **RUNTIME_VARIABLES,
        **snapshot.environment,
        "_HANDLER": snapshot.handler,
        "AWS_REGION": settings.STRATUS_REGION,
        "AWS_DEFAULT_REGION": settings.STRATUS_REGION,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{snapshot.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": snapshot.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(snapshot.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": snapshot.version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "AWS_LAMBDA_LOG_GROUP_NAME": snapshot.log_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
        **RUNTIME_DIR_VARIABLES,
    }


class HostedEnvironment(abc.ABC):
    """A sandbox and the Runtime API endpoint its runtime talks to."""

    environment_id: str
    memory_mb: int
    api: RuntimeApiServer
    sandbox: Sandbox
    started_at: float
    last_used: float

    def _launch(self, backend: SandboxBackend, spec: EnvironmentSpec) -> None:
        self.api = RuntimeApiServer(backend.runtime_api_bind_host)
        self.started_at = time.perf_counter()
        try:
            self.sandbox = backend.start(spec, runtime_api_port=self.api.port)
        except BaseException:
            self.api.admit_only(None)
            self.api.close()
            raise
        try:
            self.api.admit_only(self.sandbox.runtime_client_address())
        except BaseException:
            self.destroy()
            raise

    @abc.abstractmethod
    def describe(self) -> str:
        """What the environment is, for log lines."""

    def is_alive(self) -> bool:
        return self.sandbox.exit_reason() is None

    def destroy(self, *, wait_for_api: bool = True) -> None:
        """Stop the sandbox, then close the Runtime API endpoint. Closing waits for the
        endpoint's server loop to notice (up to its poll interval); a caller with no use
        for the endpoint any more lets that finish in the background."""
        try:
            self.sandbox.stop()
        finally:
            if wait_for_api:
                self.api.close()
            else:
                threading.Thread(target=self.api.close, name="ee-api-close", daemon=True).start()


class ExecutionEnvironment(HostedEnvironment):
    """An EE of one function version and configuration: started for it, or a stem cell
    it was given (`from_stem`)."""

    def __init__(
        self,
        snapshot: FunctionSnapshot,
        backend: SandboxBackend,
        environment_id: str,
        *,
        init_type: str = ON_DEMAND,
        stem: StemCell | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.environment_id = environment_id if stem is None else stem.environment_id
        self.memory_mb = snapshot.memory_size
        #: Initialised ahead of demand for provisioned concurrency, and kept by the pool.
        self.provisioned = init_type == PROVISIONED_CONCURRENCY
        self.from_stem = stem is not None
        # Set by the pool: when this EE's current invocation could begin (perf_counter).
        self.busy_since: float | None = None
        created = datetime.now(tz=UTC)
        self.log_stream_name = f"{created:%Y/%m/%d}/[{snapshot.version}]{self.environment_id}"
        environment = lambda_environment(snapshot, self.log_stream_name, init_type=init_type)
        if stem is None:
            spec = EnvironmentSpec(
                environment_id=environment_id,
                runtime=snapshot.runtime,
                handler=snapshot.handler,
                code_dir=code_cache.code_dir(snapshot.code_sha256_hex),
                memory_size=snapshot.memory_size,
                timeout=snapshot.timeout,
                ephemeral_storage=snapshot.ephemeral_storage,
                environment=environment,
                labels={"stratus.function": snapshot.name, "stratus.environment": environment_id},
            )
            self._launch(backend, spec)
        else:
            self._specialise(stem, environment)
        self.init_reported = False
        self.last_used = time.monotonic()
        self.invocation_count = 0

    def _specialise(self, stem: StemCell, environment: dict[str, str]) -> None:
        self.api, self.sandbox = stem.api, stem.sandbox
        task_root = self.sandbox.stem_code_dir
        try:
            # Unpacked before init starts, as for an EE started for the function.
            code_dir = code_cache.code_dir(self.snapshot.code_sha256_hex)
            # Init starts now: the stem program's own start-up was ahead of demand.
            self.started_at = time.perf_counter()
            if task_root is None:
                raise SandboxError(f"stem cell {stem.environment_id} has no task root")
            code_cache.link_into(code_dir, task_root)
            self.api.assign(
                {
                    "handler": self.snapshot.handler,
                    "environment": {**environment, **self.sandbox.backend_environment},
                    "replaces": stem.started_keys,
                }
            )
        except BaseException:
            self.destroy(wait_for_api=False)
            raise

    def describe(self) -> str:
        return f"execution environment {self.environment_id} of {self.snapshot.name}"

    @property
    def initialized(self) -> bool:
        return self.api.first_poll_at is not None
