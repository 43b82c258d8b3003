"""Execution environments (EEs) and the worker's pool of warm ones.

An EE is a sandbox running one function version with one configuration, plus the Runtime
API endpoint it polls. It serves one invocation at a time; between invocations it waits
idle in the pool until reused or stopped after the keep-alive.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from invocations import code_cache
from invocations.runtime_api import RuntimeApiServer
from invocations.sandboxes import get_backend
from invocations.sandboxes.base import EnvironmentSpec, Sandbox, SandboxBackend

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FunctionSnapshot:
    """The configuration an invocation runs with, read once when it starts."""

    function_id: int
    owner_id: int
    name: str
    arn: str
    version: str
    revision_id: str
    runtime: str
    handler: str
    memory_size: int
    timeout: int
    ephemeral_storage: int
    code_sha256_hex: str
    code_sha256: str
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def pool_key(self) -> str:
        return f"{self.function_id}:{self.version}:{self.revision_id}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


def lambda_environment(snapshot: FunctionSnapshot, log_stream_name: str) -> dict[str, str]:
    """The variables Lambda gives a function: its own, then the reserved ones (which win)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LANG": "en_US.UTF-8",
        "LD_LIBRARY_PATH": "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        **snapshot.environment,
        "_HANDLER": snapshot.handler,
        "AWS_REGION": settings.STRATUS_REGION,
        "AWS_DEFAULT_REGION": settings.STRATUS_REGION,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{snapshot.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": snapshot.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(snapshot.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": snapshot.version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": snapshot.log_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "TZ": ":UTC",
    }


class ExecutionEnvironment:
    def __init__(
        self, snapshot: FunctionSnapshot, backend: SandboxBackend, environment_id: str
    ) -> None:
        self.snapshot = snapshot
        self.environment_id = environment_id
        created = datetime.now(tz=UTC)
        self.log_stream_name = f"{created:%Y/%m/%d}/[{snapshot.version}]{environment_id}"
        self.api = RuntimeApiServer(backend.runtime_api_bind_host)
        spec = EnvironmentSpec(
            environment_id=environment_id,
            runtime=snapshot.runtime,
            handler=snapshot.handler,
            code_dir=code_cache.code_dir(snapshot.code_sha256_hex),
            memory_size=snapshot.memory_size,
            timeout=snapshot.timeout,
            ephemeral_storage=snapshot.ephemeral_storage,
            environment=lambda_environment(snapshot, self.log_stream_name),
            labels={"stratus.function": snapshot.name, "stratus.environment": environment_id},
        )
        self.started_at = time.perf_counter()
        try:
            self.sandbox: Sandbox = backend.start(spec, runtime_api_port=self.api.port)
        except BaseException:
            self.api.admit_only(None)
            self.api.close()
            raise
        try:
            self.api.admit_only(self.sandbox.runtime_client_address())
        except BaseException:
            self.destroy()
            raise
        self.init_reported = False
        self.last_used = time.monotonic()
        self.invocation_count = 0

    @property
    def initialized(self) -> bool:
        return self.api.first_poll_at is not None

    def is_alive(self) -> bool:
        return self.sandbox.exit_reason() is None

    def destroy(self) -> None:
        try:
            self.sandbox.stop()
        finally:
            self.api.close()


class EnvironmentPool:
    """The warm execution environments of this worker process."""

    def __init__(self, backend: SandboxBackend, keep_alive: float) -> None:
        self.backend = backend
        self.keep_alive = keep_alive
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._reaper = threading.Thread(target=self._reap_forever, daemon=True, name="ee-reaper")
        self._reaper.start()

    def acquire(self, snapshot: FunctionSnapshot) -> tuple[ExecutionEnvironment, bool]:
        """An EE for `snapshot`: a warm idle one if there is one, else a new (cold) one."""
        stale: list[ExecutionEnvironment] = []
        warm = None
        with self._lock:
            # A new revision of the function makes its older idle EEs useless: stop them now.
            prefix = f"{snapshot.function_id}:{snapshot.version}:"
            for key in [k for k in self._idle if k.startswith(prefix) and k != snapshot.pool_key]:
                stale.extend(self._idle.pop(key))
            idle = self._idle.get(snapshot.pool_key, [])
            while idle:
                candidate = idle.pop()
                if candidate.is_alive():
                    warm = candidate
                    break
                stale.append(candidate)
        for environment in stale:
            environment.destroy()
        if warm is not None:
            return warm, False
        environment_id = uuid.uuid4().hex
        return ExecutionEnvironment(snapshot, self.backend, environment_id), True

    def release(self, environment: ExecutionEnvironment, *, reusable: bool) -> None:
        if not reusable or self._stopping.is_set():
            environment.destroy()
            return
        environment.last_used = time.monotonic()
        with self._lock:
            self._idle.setdefault(environment.snapshot.pool_key, []).append(environment)

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(environments) for environments in self._idle.values())

    def reap_idle(self) -> int:
        deadline = time.monotonic() - self.keep_alive
        expired: list[ExecutionEnvironment] = []
        with self._lock:
            for key, environments in list(self._idle.items()):
                keep = [e for e in environments if e.last_used >= deadline and e.is_alive()]
                expired.extend(e for e in environments if e not in keep)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        for environment in expired:
            environment.destroy()
        return len(expired)

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            environments = [e for group in self._idle.values() for e in group]
            self._idle.clear()
        for environment in environments:
            try:
                environment.destroy()
            except Exception:
                logger.exception(
                    "could not stop execution environment %s", environment.environment_id
                )

    def _reap_forever(self) -> None:
        interval = max(1.0, min(30.0, self.keep_alive / 4))
        while not self._stopping.wait(interval):
            try:
                self.reap_idle()
            except Exception:
                logger.exception("reaping idle execution environments failed")


_pool: EnvironmentPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> EnvironmentPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            backend = get_backend()
            removed = backend.remove_orphans()
            if removed:
                logger.info("removed %d orphaned execution environments", removed)
            _pool = EnvironmentPool(backend, keep_alive=settings.STRATUS_EE_KEEP_ALIVE)
            atexit.register(_pool.shutdown)
        return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown()
