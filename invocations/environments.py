"""Execution environments (EEs) and the worker's pool of them.

An EE is a sandbox running one function version with one configuration, plus the Runtime
API endpoint it polls. It serves one invocation at a time; between invocations it waits
idle in the pool until reused, evicted to make room for another, or stopped after the
keep-alive.

A stem cell is a sandbox started ahead of demand for a runtime, memory size and ephemeral
storage, running the runtime's stem program with a neutral environment and an empty task
root. A cold start that finds one specialises it (the function's code linked into its task
root, its handler and environment handed over through the Runtime API) instead of starting
a sandbox; from then on it is an ordinary EE of that function.
"""

from __future__ import annotations

import abc
import atexit
import heapq
import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from celery.signals import worker_ready
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from invocations import code_cache
from invocations.runtime_api import RuntimeApiServer
from invocations.sandboxes import get_backend
from invocations.sandboxes.base import EnvironmentSpec, Sandbox, SandboxBackend, SandboxError

logger = logging.getLogger(__name__)

# Weight of the newest sample in the smoothed (EWMA) durations the pool plans with.
_SMOOTHING = 0.3
# The end of a cold start (the runtime's first poll of its Runtime API) does not wake the
# pool, so waiters that depend on it look again this often while one is initializing.
_INIT_POLL_SECONDS = 0.01
# After a stem cell or provisioned EE failed to start, its kind is not tried again sooner.
_PREWARM_RETRY_SECONDS = 5.0
# How long a provisioned EE's init may take (as Lambda's init phase outside the timeout).
PROVISIONED_INIT_TIMEOUT = 10.0
# How long shutdown waits for an environment being started ahead of demand.
_SHUTDOWN_JOIN_SECONDS = 30.0
ON_DEMAND = "on-demand"
PROVISIONED_CONCURRENCY = "provisioned-concurrency"
DEFAULT_EPHEMERAL_STORAGE_MB = 512
# Variables the interpreter or the dynamic loader read once, when the process starts: a
# stem cell started without the function's values for them cannot serve it.
_READ_AT_PROCESS_START = ("LD_", "LC_", "PYTHON", "MALLOC_", "GLIBC_")
_READ_AT_PROCESS_START_NAMES = frozenset({"LANG", "LANGUAGE"})
# Handled by the stem program: it fixes sys.path as the interpreter would have.
_EMULATED_AT_PROCESS_START = frozenset({"PYTHONPATH"})


class EnvironmentCapacityError(Exception):
    """No execution environment could be had in time: the memory budget is held by busy
    environments, or too many are starting. Nothing ran, so a retry later can succeed."""


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


@dataclass(frozen=True, order=True)
class StemShape:
    """What a stem cell is started for: the functions it can become."""

    runtime: str
    memory_size: int
    ephemeral_storage: int = DEFAULT_EPHEMERAL_STORAGE_MB

    @classmethod
    def of(cls, snapshot: FunctionSnapshot) -> StemShape:
        return cls(snapshot.runtime, snapshot.memory_size, snapshot.ephemeral_storage)

    def __str__(self) -> str:
        text = f"{self.runtime}:{self.memory_size}"
        if self.ephemeral_storage != DEFAULT_EPHEMERAL_STORAGE_MB:
            text += f":{self.ephemeral_storage}"
        return text


def parse_prewarm(text: str) -> dict[StemShape, int]:
    """STRATUS_EE_PREWARM: "RUNTIME:MEMORY[:EPHEMERAL]=COUNT", comma-separated, e.g.
    "python3.11:128=2,python3.11:512:1024=1"; empty for none."""
    shapes: dict[StemShape, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        shape_text, _, count_text = item.rpartition("=")
        fields = shape_text.split(":")
        try:
            if not 2 <= len(fields) <= 3 or not fields[0]:
                raise ValueError(item)
            sizes = [int(value) for value in fields[1:]]
            shape = StemShape(fields[0], *sizes)
            count = int(count_text)
        except ValueError:
            raise ImproperlyConfigured(
                f"STRATUS_EE_PREWARM: {item!r} is not RUNTIME:MEMORY[:EPHEMERAL]=COUNT"
            ) from None
        if count < 0 or shape.memory_size <= 0 or shape.ephemeral_storage <= 0:
            raise ImproperlyConfigured(f"STRATUS_EE_PREWARM: {item!r} is out of range")
        shapes[shape] = count
    return shapes


def prewarm_for(backend: SandboxBackend) -> dict[StemShape, int]:
    """The stem cells to keep: STRATUS_EE_PREWARM, or by default two of Python at 128 MB
    on a backend that isolates (Docker), where starting an environment is expensive."""
    configured = settings.STRATUS_EE_PREWARM
    if configured is None:
        configured = "python3.11:128=2" if backend.isolates else ""
    return parse_prewarm(configured)


# Lambda's own values, the same for every function of a runtime.
_RUNTIME_VARIABLES = {
    "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LANG": "en_US.UTF-8",
    "LD_LIBRARY_PATH": "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
}
_RUNTIME_DIR_VARIABLES = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "TZ": ":UTC",
}


def stem_environment() -> dict[str, str]:
    """A stem cell's environment: nothing of any function, nothing of Stratus."""
    return {**_RUNTIME_VARIABLES, **_RUNTIME_DIR_VARIABLES}


def stem_can_serve(snapshot: FunctionSnapshot) -> bool:
    """Whether a stem cell can become this function indistinguishably: not if the function
    sets a variable that only takes effect when a process starts."""
    neutral = stem_environment()
    wanted = {**_RUNTIME_VARIABLES, **snapshot.environment}
    for name in set(neutral) | set(wanted):
        read_at_start = name in _READ_AT_PROCESS_START_NAMES or name.startswith(
            _READ_AT_PROCESS_START
        )
        if name in _EMULATED_AT_PROCESS_START or not read_at_start:
            continue
        if wanted.get(name) != neutral.get(name):
            return False
    return True


def lambda_environment(
    snapshot: FunctionSnapshot, log_stream_name: str, *, init_type: str = ON_DEMAND
) -> dict[str, str]:
    """The variables Lambda gives a function: its own, then the reserved ones (which win)."""
    return {
        **_RUNTIME_VARIABLES,
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
        **_RUNTIME_DIR_VARIABLES,
    }


class _Hosted(abc.ABC):
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


class StemCell(_Hosted):
    """A generic environment of one shape, started ahead of demand, waiting for the
    function it is to become (see runtimes/python3_11/stratus_stem.py)."""

    def __init__(self, shape: StemShape, backend: SandboxBackend, environment_id: str) -> None:
        self.shape = shape
        self.environment_id = environment_id
        self.memory_mb = shape.memory_size
        environment = stem_environment()
        spec = EnvironmentSpec(
            environment_id=environment_id,
            runtime=shape.runtime,
            handler="",
            code_dir=Path("/nonexistent"),
            memory_size=shape.memory_size,
            timeout=0,
            ephemeral_storage=shape.ephemeral_storage,
            environment=environment,
            labels={"stratus.stem": str(shape), "stratus.environment": environment_id},
            stem=True,
        )
        self._launch(backend, spec)
        # What the stem program is to drop from its environment when it is assigned.
        self.started_keys = sorted({*environment, *self.sandbox.backend_environment})
        self.last_used = time.monotonic()

    def describe(self) -> str:
        return f"stem cell {self.shape}"


class ExecutionEnvironment(_Hosted):
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


class _Timings:
    """Measured durations the pool plans with, smoothed: how long an EE of a key is held per
    warm invocation, and how long a cold start takes (per key, else per runtime)."""

    def __init__(self) -> None:
        self.warm: dict[str, float] = {}
        self.cold: dict[str, float] = {}
        self.cold_by_runtime: dict[str, float] = {}

    def note_warm(self, key: str, seconds: float) -> None:
        _smooth(self.warm, key, seconds)

    def note_cold(self, key: str, runtime: str, seconds: float) -> None:
        _smooth(self.cold, key, seconds)
        _smooth(self.cold_by_runtime, runtime, seconds)

    def cold_estimate(self, key: str, runtime: str) -> float | None:
        return self.cold.get(key, self.cold_by_runtime.get(runtime))

    def keep_only(self, keys: set[str]) -> None:
        for table in (self.warm, self.cold):
            for key in [k for k in table if k not in keys]:
                del table[key]


def _smooth(table: dict[str, float], key: str, sample: float) -> None:
    previous = table.get(key)
    table[key] = sample if previous is None else previous + _SMOOTHING * (sample - previous)


def nth_availability(first_free: list[float], warm: float, position: int) -> float | None:
    """When the waiter at `position` (1 = next in line) can expect an EE, in seconds from
    now: each EE is free at its `first_free` time and, serving one waiter after another,
    every `warm` seconds after that. None when there is no EE to wait for."""
    if not first_free:
        return None
    step = max(warm, 1e-4)
    heap = list(first_free)
    heapq.heapify(heap)
    for _ in range(position - 1):
        heapq.heappush(heap, heapq.heappop(heap) + step)
    return heap[0]


@dataclass(eq=False)
class _Ticket:
    """One acquire() in progress."""

    snapshot: FunctionSnapshot
    wait: float
    deadline: float
    burst_started: float | None = None
    reserved_at: float = 0.0
    waited: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.snapshot.pool_key

    @property
    def need_mb(self) -> int:
        return self.snapshot.memory_size


class EnvironmentPool:
    """The execution environments of this worker process; thread-safe, one per process.

    `acquire` hands out, in this order:

    1. **Warm**: an idle EE of the same function version and configuration (a provisioned
       one first, else the most recently used one, so the others age out).
    2. **Coalesce** (burst control, below): wait briefly for an EE of the same key that is
       about to be free rather than start one more.
    3. **Stem cell**: specialise an idle stem cell of the function's runtime, memory size
       and ephemeral storage (OpenWhisk's prewarmed containers, Fission's pool): a cold
       start, with Init Duration, that creates no sandbox.
    4. **Cold**: start a new EE, once fewer than `max_cold_starts` are starting (creation
       up to the runtime's first poll of its Runtime API, i.e. the end of init) and the
       memory budget has room. When it has not, idle stem cells, then the least recently
       used idle EEs of any function, are evicted if that makes room; busy and provisioned
       EEs never are. Otherwise the acquire waits for a release, up to its `timeout`, then
       raises EnvironmentCapacityError. Waiting for room is first come, first served, so a
       large function is not starved by a stream of small ones (OpenWhisk's run buffer).

    The budget counts the configured memory of every live EE and stem cell, busy, idle,
    starting, or being stopped.

    A background thread keeps `prewarm[shape]` idle stem cells of each shape, started when
    the pool starts and replaced after one is taken, never on an invocation's path, and
    only into memory nobody waits for. Keep-alive does not stop them. It also keeps the
    provisioned EEs `set_provisioned` asks for: started and initialised ahead of demand,
    exempt from keep-alive and eviction (they evict idle stem cells and EEs to make room).

    Burst control follows Knative's activator rather than OpenWhisk's one container per
    activation: a request holds in front of the EEs already there while they are about to
    be free. The pool measures, per key, how long an EE is held per invocation (`warm`)
    and, per key or else per runtime, how long a cold start takes up to the end of init.
    An acquire that finds no idle EE takes its place in line behind the other waiters of
    its key and estimates when an EE would be free for it: a busy EE frees up `warm` after
    its invocation began and then every `warm` again (each waiter ahead takes one turn); a
    cold start in flight frees up after its measured remaining start time plus `warm`. If
    that estimate falls within the burst bound, it waits (woken by every release, and
    estimating again each time) instead of starting an EE; otherwise it goes on to a cold
    start. The bound is `burst_wait` (100 ms by default) but never more than a measured
    cold start: waiting only pays while it is shorter than starting. Estimates can be
    wrong (an invocation hangs, starts slow down under load), so an acquire waits twice
    the bound at most in all. Before any invocation of a key has finished (`warm`
    unmeasured), the waiters wait for the first EE to come free, while a busy one has run
    for less than the bound or a starting one is expected to end its init within it.
    So twenty simultaneous invocations of a 5 ms function start about as many EEs as may
    start at once, not twenty, while invocations of a 1 s function each get their own EE.
    """

    def __init__(
        self,
        backend: SandboxBackend,
        keep_alive: float,
        *,
        memory_budget_mb: int,
        max_cold_starts: int = 4,
        burst_wait: float = 0.1,
        capacity_wait: float = 10.0,
        prewarm: dict[StemShape, int] | None = None,
    ) -> None:
        self.backend = backend
        self.keep_alive = keep_alive
        self.memory_budget_mb = memory_budget_mb
        self.max_cold_starts = max(1, max_cold_starts)
        self.burst_wait = max(0.0, burst_wait)
        self.capacity_wait = capacity_wait
        self.prewarm: dict[StemShape, int] = {}
        for shape, count in sorted((prewarm or {}).items()):
            if count <= 0:
                continue
            if not backend.supports_stem(shape.runtime):
                logger.warning(
                    "no stem cells of %s: %s cannot start them for that runtime",
                    shape,
                    type(backend).__name__,
                )
                continue
            self.prewarm[shape] = count
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._busy: dict[str, set[ExecutionEnvironment]] = {}
        self._creating: dict[str, list[float]] = {}
        self._initializing: set[ExecutionEnvironment] = set()
        self._waiting: dict[str, list[_Ticket]] = {}
        self._room_queue: deque[_Ticket] = deque()
        self._stems: dict[StemShape, list[StemCell]] = {}
        self._stems_starting: Counter[StemShape] = Counter()
        self._provisioned: dict[str, tuple[FunctionSnapshot, int]] = {}
        self._provisioning: Counter[str] = Counter()
        self._retry_after: dict[object, float] = {}
        self._live_mb = 0
        self._stopping_mb = 0
        self._timings = _Timings()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._reaper = threading.Thread(target=self._reap_forever, daemon=True, name="ee-reaper")
        self._reaper.start()
        self._provisioners: set[threading.Thread] = set()
        self._prewarmer = threading.Thread(
            target=self._prewarm_forever, daemon=True, name="ee-prewarm"
        )
        self._prewarmer.start()

    # --- acquire and release ----------------------------------------------------------------

    def acquire(
        self, snapshot: FunctionSnapshot, *, timeout: float | None = None
    ) -> tuple[ExecutionEnvironment, bool]:
        """An EE for `snapshot` and whether it is a cold start; waits up to `timeout`
        seconds (default: the pool's capacity wait) for room or a cold-start slot."""
        wait = self.capacity_wait if timeout is None else timeout
        ticket = _Ticket(snapshot, wait=wait, deadline=time.perf_counter() + wait)
        with self._lock:
            if ticket.need_mb > self.memory_budget_mb:
                self._counts["capacity_errors"] += 1
                raise EnvironmentCapacityError(
                    f"{snapshot.name} needs {ticket.need_mb} MB, more than the execution "
                    f"environment memory budget of {self.memory_budget_mb} MB"
                )
            self._waiting.setdefault(ticket.key, []).append(ticket)
            stale = self._take_older_revisions(snapshot)
        try:
            self._stop_all(stale)
            return self._acquire(ticket)
        finally:
            with self._lock:
                self._leave(ticket)

    def release(self, environment: ExecutionEnvironment, *, reusable: bool) -> None:
        now = time.perf_counter()
        key = environment.snapshot.pool_key
        with self._lock:
            self._note_initialized()
            self._initializing.discard(environment)
            busy = self._busy.get(key, set())
            busy.discard(environment)
            if not busy:
                self._busy.pop(key, None)
            if reusable and environment.busy_since is not None:
                self._timings.note_warm(key, now - environment.busy_since)
            environment.busy_since = None
            keep = reusable and not self._stopping.is_set()
            if keep and environment.provisioned:
                keep = self._provisioned_count(key) < self._provisioned_target(key)
            if keep:
                environment.last_used = time.monotonic()
                self._idle.setdefault(key, []).append(environment)
                self._changed.notify_all()
                return
            self._counts["discarded"] += 1
            self._doom(environment)
            self._changed.notify_all()
        self._stop(environment, swallow=False)

    def _acquire(self, ticket: _Ticket) -> tuple[ExecutionEnvironment, bool]:
        while True:
            decision = self._place(ticket)
            if decision.kind == "cold":
                return self._create(ticket), True
            if decision.kind == "evict":
                self._evict(decision.victims, ticket)
                continue
            if decision.kind == "stem":
                assert decision.stem is not None
                specialised = self._specialise(ticket, decision.stem)
                if specialised is None:
                    continue
                return specialised, True
            warm = decision.environment
            assert warm is not None
            if warm.is_alive():
                with self._lock:
                    self._counts["warm_hits"] += 1
                    if warm.provisioned:
                        self._counts["provisioned_hits"] += 1
                    if ticket.burst_started is not None:
                        self._counts["burst_hits"] += 1
                return warm, False
            self.release(warm, reusable=False)

    def _place(self, ticket: _Ticket) -> _Decision:
        """Decide, under the lock, what this acquire does next, waiting as long as needed."""
        with self._lock:
            while True:
                now = time.perf_counter()
                self._note_initialized()
                if self._stopping.is_set():
                    raise EnvironmentCapacityError("the execution environment pool is stopping")
                warm = self._pop_idle(ticket.key)
                if warm is not None:
                    self._busy.setdefault(ticket.key, set()).add(warm)
                    warm.busy_since = now
                    return _Decision("warm", environment=warm)
                until = self._burst_wait_until(ticket, now)
                if until is not None and now < ticket.deadline:
                    self._note_wait(ticket, "burst_waits")
                    if ticket.burst_started is None:
                        ticket.burst_started = now
                    self._wait(min(until, ticket.deadline) - now)
                    continue
                stem = self._take_stem(ticket, now)
                if stem is not None:
                    return _Decision("stem", stem=stem)
                in_flight = self._cold_starts_in_flight()
                if in_flight >= self.max_cold_starts:
                    self._note_wait(ticket, "cold_start_waits")
                    self._wait_or_fail(
                        ticket,
                        now,
                        f"{in_flight} execution environments were still starting after "
                        f"{ticket.wait:.1f} s",
                    )
                    continue
                if self._has_room(ticket):
                    self._reserve(ticket, now)
                    self._counts["cold_starts"] += 1
                    return _Decision("cold")
                victims = self._choose_victims(ticket)
                if victims:
                    return _Decision("evict", victims=victims)
                self._note_wait(ticket, "memory_waits")
                self._wait_or_fail(
                    ticket,
                    now,
                    f"no room for a {ticket.need_mb} MB execution environment after "
                    f"{ticket.wait:.1f} s: {self._live_mb} of {self.memory_budget_mb} MB are "
                    "held by environments in use",
                )

    def _create(self, ticket: _Ticket) -> ExecutionEnvironment:
        try:
            environment = ExecutionEnvironment(ticket.snapshot, self.backend, uuid.uuid4().hex)
        except BaseException:
            with self._lock:
                self._end_creation(ticket)
                self._live_mb -= ticket.need_mb
                self._counts["cold_start_failures"] += 1
                self._changed.notify_all()
            raise
        self._started(ticket, environment)
        return environment

    def _specialise(self, ticket: _Ticket, stem: StemCell) -> ExecutionEnvironment | None:
        """The stem cell turned into an EE of the ticket's function; None if that failed
        (the acquire goes on as if there had been no stem cell)."""
        try:
            if not stem.is_alive():
                stem.destroy(wait_for_api=False)
                raise SandboxError("its runtime has ended")
            environment = ExecutionEnvironment(
                ticket.snapshot, self.backend, stem.environment_id, stem=stem
            )
        except Exception as exc:
            logger.warning("could not specialise %s for %s: %s", stem.describe(), ticket.key, exc)
            with self._lock:
                self._end_creation(ticket)
                self._live_mb -= ticket.need_mb
                self._counts["stem_failures"] += 1
                # Back in line, to go on as if there had been no stem cell.
                self._waiting.setdefault(ticket.key, []).append(ticket)
                self._changed.notify_all()
            return None
        self._started(ticket, environment, counter="stem_hits")
        return environment

    def _started(
        self, ticket: _Ticket, environment: ExecutionEnvironment, *, counter: str = ""
    ) -> None:
        with self._lock:
            if counter:
                self._counts[counter] += 1
            self._end_creation(ticket)
            self._initializing.add(environment)
            self._busy.setdefault(ticket.key, set()).add(environment)
            self._changed.notify_all()

    def _evict(self, victims: list[_Hosted], ticket: _Ticket) -> None:
        now = time.monotonic()
        for victim in victims:
            logger.info(
                "evicting idle %s (%d MB, idle %.1f s) to make room for %s (%d MB)",
                victim.describe(),
                victim.memory_mb,
                now - victim.last_used,
                ticket.snapshot.name,
                ticket.need_mb,
            )
        self._stop_all(victims)

    # --- stem cells and provisioned EEs -------------------------------------------------------

    def set_provisioned(self, snapshot: FunctionSnapshot, count: int) -> None:
        """Keep `count` initialised EEs of `snapshot` (provisioned concurrency), or none
        (count 0). Invocations beyond them get on-demand EEs."""
        key = snapshot.pool_key
        with self._lock:
            surplus: list[ExecutionEnvironment] = []
            if count <= 0:
                self._provisioned.pop(key, None)
            else:
                others = sum(
                    s.memory_size * n for k, (s, n) in self._provisioned.items() if k != key
                )
                if others + count * snapshot.memory_size > self.memory_budget_mb:
                    raise EnvironmentCapacityError(
                        f"{count} provisioned environments of {snapshot.memory_size} MB do not "
                        f"fit in the execution environment memory budget of "
                        f"{self.memory_budget_mb} MB ({others} MB provisioned already)"
                    )
                self._provisioned[key] = (snapshot, count)
            excess = self._provisioned_count(key) - max(0, count)
            idle = self._idle.get(key, [])
            for environment in [e for e in idle if e.provisioned][: max(0, excess)]:
                self._remove_idle(environment)
                self._doom(environment)
                surplus.append(environment)
            self._changed.notify_all()
        self._stop_all(surplus)

    def provisioned_status(self) -> dict[str, tuple[int, int]]:
        """Pool key -> (initialised provisioned EEs, how many were asked for)."""
        with self._lock:
            return {
                key: (self._provisioned_count(key), count)
                for key, (_, count) in self._provisioned.items()
            }

    def _provisioned_target(self, key: str) -> int:
        target = self._provisioned.get(key)
        return target[1] if target is not None else 0

    def _provisioned_count(self, key: str) -> int:
        idle = self._idle.get(key, [])
        busy = self._busy.get(key, set())
        return sum(1 for e in [*idle, *busy] if e.provisioned)

    def _take_stem(self, ticket: _Ticket, now: float) -> StemCell | None:
        shape = StemShape.of(ticket.snapshot)
        cells = self._stems.get(shape)
        if not cells or not stem_can_serve(ticket.snapshot):
            return None
        stem = cells.pop()
        if not cells:
            del self._stems[shape]
        # Its memory is counted already; from now on it is the ticket's.
        self._leave(ticket)
        ticket.reserved_at = now
        self._creating.setdefault(ticket.key, []).append(now)
        self._changed.notify_all()
        return stem

    def _prewarm_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self._next_prewarm_job()
                if isinstance(job, StemShape):
                    self._start_stem(job)
                elif isinstance(job, list):
                    self._stop_all(job)
                elif job is not None:
                    thread = threading.Thread(
                        target=self._provision_one, args=(job,), daemon=True, name="ee-provision"
                    )
                    with self._lock:
                        self._provisioners.add(thread)
                    thread.start()
            except Exception:
                logger.exception("pre-warming execution environments failed")
                self._stopping.wait(1.0)

    def _next_prewarm_job(self) -> StemShape | FunctionSnapshot | list[_Hosted] | None:
        """What to start next (provisioned EEs first, then stem cells) with its memory
        reserved, or idle environments to evict for a provisioned one; None after a wait."""
        with self._lock:
            if self._stopping.is_set():
                return None
            now = time.monotonic()
            if not self._room_queue and self._cold_starts_in_flight() < self.max_cold_starts:
                for key, (snapshot, count) in self._provisioned.items():
                    if self._retry_after.get(key, 0.0) > now:
                        continue
                    if self._provisioned_count(key) + self._provisioning[key] >= count:
                        continue
                    if self._live_mb + snapshot.memory_size > self.memory_budget_mb:
                        victims = self._victims_for(snapshot.memory_size)
                        if victims:
                            return victims
                        continue
                    self._provisioning[key] += 1
                    self._live_mb += snapshot.memory_size
                    self._counts["provisioned_starts"] += 1
                    return snapshot
                for shape, count in self.prewarm.items():
                    if self._retry_after.get(shape, 0.0) > now:
                        continue
                    have = len(self._stems.get(shape, ())) + self._stems_starting[shape]
                    if have >= count or self._live_mb + shape.memory_size > self.memory_budget_mb:
                        continue
                    self._stems_starting[shape] += 1
                    self._live_mb += shape.memory_size
                    self._counts["stem_starts"] += 1
                    return shape
            self._changed.wait(1.0)
            return None

    def _start_stem(self, shape: StemShape) -> None:
        try:
            stem = StemCell(shape, self.backend, uuid.uuid4().hex)
        except Exception:
            logger.exception("could not start a stem cell of %s", shape)
            with self._lock:
                self._stems_starting[shape] -= 1
                self._live_mb -= shape.memory_size
                self._counts["stem_failures"] += 1
                self._retry_after[shape] = time.monotonic() + _PREWARM_RETRY_SECONDS
                self._changed.notify_all()
            return
        with self._lock:
            self._stems_starting[shape] -= 1
            keep = not self._stopping.is_set()
            if keep:
                self._stems.setdefault(shape, []).append(stem)
            else:
                self._doom(stem)
            self._changed.notify_all()
        if not keep:
            self._stop(stem)

    def _provision_one(self, snapshot: FunctionSnapshot) -> None:
        try:
            self._provision(snapshot)
        finally:
            # The code package may have been read from the database on this thread.
            connections.close_all()

    def _provision(self, snapshot: FunctionSnapshot) -> None:
        key = snapshot.pool_key
        environment: ExecutionEnvironment | None = None
        try:
            environment = ExecutionEnvironment(
                snapshot, self.backend, uuid.uuid4().hex, init_type=PROVISIONED_CONCURRENCY
            )
            _await_init(environment)
        except Exception as exc:
            logger.warning("could not provision an execution environment of %s: %s", key, exc)
            with self._lock:
                self._provisioning[key] -= 1
                self._counts["provisioned_failures"] += 1
                self._retry_after[key] = time.monotonic() + _PREWARM_RETRY_SECONDS
                if environment is None:
                    self._live_mb -= snapshot.memory_size
                else:
                    self._doom(environment)
                self._changed.notify_all()
                self._provisioners.discard(threading.current_thread())
            if environment is not None:
                self._stop(environment)
            return
        with self._lock:
            self._provisioners.discard(threading.current_thread())
            self._provisioning[key] -= 1
            keep = not self._stopping.is_set() and (
                self._provisioned_count(key) < self._provisioned_target(key)
            )
            if keep:
                environment.last_used = time.monotonic()
                self._idle.setdefault(key, []).append(environment)
            else:
                self._doom(environment)
            self._changed.notify_all()
        if not keep:
            self._stop(environment)

    # --- helpers; all called with the lock held ---------------------------------------------

    def _leave(self, ticket: _Ticket) -> None:
        waiting = self._waiting.get(ticket.key, [])
        if ticket in waiting:
            waiting.remove(ticket)
        if not waiting:
            self._waiting.pop(ticket.key, None)
        if ticket in self._room_queue:
            self._room_queue.remove(ticket)
            self._changed.notify_all()

    def _take_older_revisions(self, snapshot: FunctionSnapshot) -> list[ExecutionEnvironment]:
        # A new revision of the function makes its older idle EEs useless: stop them now.
        prefix = f"{snapshot.function_id}:{snapshot.version}:"
        stale: list[ExecutionEnvironment] = []
        for key in [k for k in self._idle if k.startswith(prefix) and k != snapshot.pool_key]:
            stale.extend(self._idle.pop(key))
        for key in [k for k in self._provisioned if k.startswith(prefix)]:
            if key != snapshot.pool_key:
                logger.info("provisioned environments of %s replaced by a new revision", key)
                del self._provisioned[key]
        for environment in stale:
            self._doom(environment)
        self._counts["discarded"] += len(stale)
        return stale

    def _pop_idle(self, key: str) -> ExecutionEnvironment | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        provisioned = [e for e in idle if e.provisioned]
        environment = provisioned[-1] if provisioned else idle[-1]
        idle.remove(environment)
        if not idle:
            del self._idle[key]
        return environment

    def _remove_idle(self, environment: ExecutionEnvironment) -> None:
        key = environment.snapshot.pool_key
        idle = self._idle.get(key, [])
        idle.remove(environment)
        if not idle:
            self._idle.pop(key, None)

    def _remove_stem(self, stem: StemCell) -> None:
        cells = self._stems.get(stem.shape, [])
        cells.remove(stem)
        if not cells:
            self._stems.pop(stem.shape, None)

    def _note_initialized(self) -> None:
        for environment in [e for e in self._initializing if e.api.first_poll_at is not None]:
            first_poll = environment.api.first_poll_at
            assert first_poll is not None
            self._initializing.discard(environment)
            environment.busy_since = first_poll
            self._timings.note_cold(
                environment.snapshot.pool_key,
                environment.snapshot.runtime,
                first_poll - environment.started_at,
            )

    def _cold_starts_in_flight(self) -> int:
        return (
            len(self._initializing)
            + sum(len(s) for s in self._creating.values())
            + sum(self._stems_starting.values())
            + sum(self._provisioning.values())
        )

    def _burst_wait_until(self, ticket: _Ticket, now: float) -> float | None:
        """Until when to wait for an EE of the key about to be free, or None to go on."""
        bound = self.burst_wait
        cold = self._timings.cold_estimate(ticket.key, ticket.snapshot.runtime)
        if cold is not None:
            bound = min(bound, cold)
        started = ticket.burst_started if ticket.burst_started is not None else now
        give_up = started + 2 * bound
        if give_up <= now:
            return None
        expected = self._expected_wait(ticket, now, bound)
        if expected is None or expected > bound:
            return None
        return min(give_up, now + bound)

    def _expected_wait(self, ticket: _Ticket, now: float, bound: float) -> float | None:
        key = ticket.key
        warm = self._timings.warm.get(key)
        cold = self._timings.cold_estimate(key, ticket.snapshot.runtime)
        first_free: list[float] = []
        starts = list(self._creating.get(key, []))
        for environment in self._busy.get(key, ()):
            if environment in self._initializing:
                starts.append(environment.started_at)
            elif environment.busy_since is not None:
                elapsed = now - environment.busy_since
                if warm is not None:
                    first_free.append(max(0.0, warm - elapsed))
                elif elapsed < bound:
                    first_free.append(bound - elapsed)
        if cold is not None:
            first_free.extend(max(0.0, cold - (now - s)) + (warm or 0.0) for s in starts)
        if warm is None:
            # Nothing measured yet: every waiter waits for the first invocation to end.
            return min(first_free) if first_free else None
        position = self._waiting[key].index(ticket) + 1
        return nth_availability(first_free, warm, position)

    def _has_room(self, ticket: _Ticket) -> bool:
        fits = self._live_mb + ticket.need_mb <= self.memory_budget_mb
        if not self._room_queue and fits:
            return True
        if ticket not in self._room_queue:
            self._room_queue.append(ticket)
        return self._room_queue[0] is ticket and fits

    def _reserve(self, ticket: _Ticket, now: float) -> None:
        self._leave(ticket)
        self._live_mb += ticket.need_mb
        ticket.reserved_at = now
        self._creating.setdefault(ticket.key, []).append(now)
        in_flight = self._cold_starts_in_flight()
        self._counts["peak_cold_starts_in_flight"] = max(
            self._counts["peak_cold_starts_in_flight"], in_flight
        )

    def _end_creation(self, ticket: _Ticket) -> None:
        creating = self._creating.get(ticket.key, [])
        creating.remove(ticket.reserved_at)
        if not creating:
            self._creating.pop(ticket.key, None)

    def _choose_victims(self, ticket: _Ticket) -> list[_Hosted]:
        """Idle environments whose eviction makes room, or none if evicting all of them
        would not (or environments already stopping will make room anyway)."""
        if self._room_queue[0] is not ticket:
            return []
        return self._victims_for(ticket.need_mb)

    def _victims_for(self, need_mb: int) -> list[_Hosted]:
        """Idle stem cells first, then the least recently used idle EEs (never provisioned
        ones), enough to make room for `need_mb`; taken out of the pool and doomed."""
        shortfall = self._live_mb - self._stopping_mb + need_mb - self.memory_budget_mb
        if shortfall <= 0:
            return []
        stems = sorted((s for group in self._stems.values() for s in group), key=_last_used)
        idle = sorted(
            (e for group in self._idle.values() for e in group if not e.provisioned),
            key=_last_used,
        )
        victims: list[_Hosted] = []
        freed = 0
        for candidate in [*stems, *idle]:
            if freed >= shortfall:
                break
            victims.append(candidate)
            freed += candidate.memory_mb
        if freed < shortfall:
            return []
        for victim in victims:
            if isinstance(victim, StemCell):
                self._remove_stem(victim)
                self._counts["stem_evictions"] += 1
            else:
                assert isinstance(victim, ExecutionEnvironment)
                self._remove_idle(victim)
            self._doom(victim)
        self._counts["evictions"] += len(victims)
        return victims

    def _note_wait(self, ticket: _Ticket, kind: str) -> None:
        if kind not in ticket.waited:
            ticket.waited.add(kind)
            self._counts[kind] += 1

    def _wait_or_fail(self, ticket: _Ticket, now: float, message: str) -> None:
        if now >= ticket.deadline:
            self._counts["capacity_errors"] += 1
            raise EnvironmentCapacityError(message)
        self._wait(ticket.deadline - now)

    def _wait(self, seconds: float) -> None:
        if self._initializing:
            seconds = min(seconds, _INIT_POLL_SECONDS)
        self._changed.wait(max(0.0, seconds))

    def _doom(self, environment: _Hosted) -> None:
        """Mark an environment that has left the pool's lists as stopping; its memory stays
        counted until it is gone."""
        self._stopping_mb += environment.memory_mb

    # --- stopping EEs -------------------------------------------------------------------------

    def _stop(self, environment: _Hosted, *, swallow: bool = True) -> None:
        try:
            environment.destroy(wait_for_api=False)
        except Exception:
            if not swallow:
                raise
            logger.exception("could not stop %s", environment.describe())
        finally:
            with self._lock:
                self._live_mb -= environment.memory_mb
                self._stopping_mb -= environment.memory_mb
                self._changed.notify_all()

    def _stop_all(self, environments: Sequence[_Hosted]) -> None:
        for environment in environments:
            self._stop(environment)

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(environments) for environments in self._idle.values())

    def reap_idle(self) -> int:
        """Stop idle EEs unused for the keep-alive (not provisioned ones), and any EE or
        stem cell whose runtime has gone away."""
        cutoff = time.monotonic() - self.keep_alive
        with self._lock:
            expired = [
                e
                for group in self._idle.values()
                for e in group
                if (e.last_used < cutoff and not e.provisioned) or not e.is_alive()
            ]
            for environment in expired:
                self._remove_idle(environment)
                self._doom(environment)
            dead: list[_Hosted] = [
                s for group in self._stems.values() for s in group if not s.is_alive()
            ]
            for stem in dead:
                assert isinstance(stem, StemCell)
                self._remove_stem(stem)
                self._doom(stem)
            self._counts["expired"] += len(expired)
            self._counts["stem_deaths"] += len(dead)
            self._timings.keep_only({*self._idle, *self._busy, *self._creating})
            if dead or expired:
                self._changed.notify_all()
        self._stop_all([*expired, *dead])
        return len(expired)

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            self._changed.notify_all()
            threads = [self._prewarmer, *self._provisioners]
        # What they are starting now, they stop themselves when they see the pool stopping.
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=_SHUTDOWN_JOIN_SECONDS)
        with self._lock:
            environments: list[_Hosted] = [e for group in self._idle.values() for e in group]
            environments += [s for group in self._stems.values() for s in group]
            self._idle.clear()
            self._stems.clear()
            self._provisioned.clear()
            for environment in environments:
                self._doom(environment)
            self._changed.notify_all()
        self._stop_all(environments)

    def stats(self) -> dict[str, int]:
        """Counters since the pool started, and what it holds now, for tuning."""
        with self._lock:
            self._note_initialized()
            idle = sum(len(group) for group in self._idle.values())
            busy = sum(len(group) for group in self._busy.values())
            starting = sum(len(times) for times in self._creating.values())
            counters = (
                "cold_starts",
                "warm_hits",
                "burst_waits",
                "burst_hits",
                "cold_start_waits",
                "memory_waits",
                "evictions",
                "expired",
                "discarded",
                "capacity_errors",
                "cold_start_failures",
                "peak_cold_starts_in_flight",
                "stem_hits",
                "stem_starts",
                "stem_failures",
                "stem_evictions",
                "stem_deaths",
                "provisioned_starts",
                "provisioned_hits",
                "provisioned_failures",
            )
            return {
                **{name: self._counts[name] for name in counters},
                "environments": idle + busy + starting,
                "idle_environments": idle,
                "busy_environments": busy,
                "idle_stem_cells": sum(len(group) for group in self._stems.values()),
                # Idle stem cells whose program has started and waits for an assignment.
                "waiting_stem_cells": sum(
                    1
                    for group in self._stems.values()
                    for stem in group
                    if stem.api.assignment_polled_at is not None
                ),
                "stem_cells_starting": sum(self._stems_starting.values()),
                "provisioned_environments": sum(
                    self._provisioned_count(key) for key in self._provisioned
                ),
                "cold_starts_in_flight": self._cold_starts_in_flight(),
                "waiting_acquires": sum(len(w) for w in self._waiting.values()),
                "memory_committed_mb": self._live_mb,
                "memory_budget_mb": self.memory_budget_mb,
            }

    def _reap_forever(self) -> None:
        interval = max(0.1, min(30.0, self.keep_alive / 4))
        while not self._stopping.wait(interval):
            try:
                self.reap_idle()
            except Exception:
                logger.exception("reaping idle execution environments failed")


@dataclass
class _Decision:
    """What an acquire does next: take a warm EE, specialise a stem cell, start an EE
    (cold), or evict idle environments and decide again."""

    kind: str
    environment: ExecutionEnvironment | None = None
    stem: StemCell | None = None
    victims: list[_Hosted] = field(default_factory=list)


def _await_init(environment: ExecutionEnvironment) -> None:
    """Wait until the runtime has finished its init (its first poll for an event)."""
    give_up = time.perf_counter() + PROVISIONED_INIT_TIMEOUT
    while environment.api.first_poll_at is None:
        reason = environment.sandbox.exit_reason()
        if reason is not None:
            raise SandboxError(f"the runtime ended during init: {reason}")
        if time.perf_counter() > give_up:
            raise SandboxError(f"init did not finish in {PROVISIONED_INIT_TIMEOUT:.0f} s")
        time.sleep(_INIT_POLL_SECONDS)


def _last_used(environment: _Hosted) -> float:
    return environment.last_used


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
            _pool = EnvironmentPool(
                backend,
                keep_alive=settings.STRATUS_EE_KEEP_ALIVE,
                memory_budget_mb=settings.STRATUS_EE_MEMORY_BUDGET_MB,
                max_cold_starts=settings.STRATUS_EE_MAX_CONCURRENT_COLD_STARTS,
                burst_wait=settings.STRATUS_EE_BURST_WAIT_MS / 1000,
                capacity_wait=settings.STRATUS_EE_CAPACITY_WAIT,
                prewarm=prewarm_for(backend),
            )
            atexit.register(_pool.shutdown)
        return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown()


@worker_ready.connect
def _start_with_worker(**_: object) -> None:
    # The stem cells and provisioned EEs are started ahead of the first invocation.
    get_pool()
