"""Execution environments (EEs) and the worker's pool of them.

An EE is a sandbox running one function version with one configuration, plus the Runtime
API endpoint it polls. It serves one invocation at a time; between invocations it waits
idle in the pool until reused, evicted to make room for another, or stopped after the
keep-alive.
"""

from __future__ import annotations

import atexit
import heapq
import logging
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from invocations import code_cache
from invocations.runtime_api import RuntimeApiServer
from invocations.sandboxes import get_backend
from invocations.sandboxes.base import EnvironmentSpec, Sandbox, SandboxBackend

logger = logging.getLogger(__name__)

# Weight of the newest sample in the smoothed (EWMA) durations the pool plans with.
_SMOOTHING = 0.3
# The end of a cold start (the runtime's first poll of its Runtime API) does not wake the
# pool, so waiters that depend on it look again this often while one is initializing.
_INIT_POLL_SECONDS = 0.01


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
        self.memory_mb = snapshot.memory_size
        # Set by the pool: when this EE's current invocation could begin (perf_counter).
        self.busy_since: float | None = None
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

    1. **Warm**: an idle EE of the same function version and configuration (the most
       recently used one, so the others age out).
    2. **Coalesce** (burst control, below): wait briefly for an EE of the same key that is
       about to be free rather than start one more.
    3. **Cold**: start a new EE, once fewer than `max_cold_starts` are starting (creation
       up to the runtime's first poll of its Runtime API, i.e. the end of init) and the
       memory budget has room. When it has not, the least recently used idle EEs of any
       function are evicted if that makes room; busy EEs never are. Otherwise the acquire
       waits for a release, up to its `timeout`, then raises EnvironmentCapacityError.
       Waiting for room is first come, first served, so a large function is not starved
       by a stream of small ones (OpenWhisk's run buffer).

    The budget counts the configured memory of every live EE, busy, idle, starting, or
    being stopped. A pre-warmed generic environment stage fits between 1 and 3, counted
    against the same budget.

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
    ) -> None:
        self.backend = backend
        self.keep_alive = keep_alive
        self.memory_budget_mb = memory_budget_mb
        self.max_cold_starts = max(1, max_cold_starts)
        self.burst_wait = max(0.0, burst_wait)
        self.capacity_wait = capacity_wait
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._busy: dict[str, set[ExecutionEnvironment]] = {}
        self._creating: dict[str, list[float]] = {}
        self._initializing: set[ExecutionEnvironment] = set()
        self._waiting: dict[str, list[_Ticket]] = {}
        self._room_queue: deque[_Ticket] = deque()
        self._live_mb = 0
        self._stopping_mb = 0
        self._timings = _Timings()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._reaper = threading.Thread(target=self._reap_forever, daemon=True, name="ee-reaper")
        self._reaper.start()

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
            if reusable and not self._stopping.is_set():
                environment.last_used = time.monotonic()
                self._idle.setdefault(key, []).append(environment)
                self._changed.notify_all()
                return
            self._counts["discarded"] += 1
            self._doom(environment)
        self._stop(environment, swallow=False)

    def _acquire(self, ticket: _Ticket) -> tuple[ExecutionEnvironment, bool]:
        while True:
            decision, environments = self._place(ticket)
            if decision == "cold":
                return self._create(ticket), True
            if decision == "evict":
                self._evict(environments, ticket)
                continue
            (warm,) = environments
            if warm.is_alive():
                with self._lock:
                    self._counts["warm_hits"] += 1
                    if ticket.burst_started is not None:
                        self._counts["burst_hits"] += 1
                return warm, False
            self.release(warm, reusable=False)

    def _place(self, ticket: _Ticket) -> tuple[str, list[ExecutionEnvironment]]:
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
                    return "warm", [warm]
                until = self._burst_wait_until(ticket, now)
                if until is not None and now < ticket.deadline:
                    self._note_wait(ticket, "burst_waits")
                    if ticket.burst_started is None:
                        ticket.burst_started = now
                    self._wait(min(until, ticket.deadline) - now)
                    continue
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
                    return "cold", []
                victims = self._choose_victims(ticket)
                if victims:
                    return "evict", victims
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
        with self._lock:
            self._end_creation(ticket)
            self._initializing.add(environment)
            self._busy.setdefault(ticket.key, set()).add(environment)
            self._changed.notify_all()
        return environment

    def _evict(self, victims: list[ExecutionEnvironment], ticket: _Ticket) -> None:
        now = time.monotonic()
        for victim in victims:
            logger.info(
                "evicting idle execution environment %s of %s (%d MB, idle %.1f s) to make "
                "room for %s (%d MB)",
                victim.environment_id,
                victim.snapshot.name,
                victim.memory_mb,
                now - victim.last_used,
                ticket.snapshot.name,
                ticket.need_mb,
            )
        self._stop_all(victims)

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
        for environment in stale:
            self._doom(environment)
        self._counts["discarded"] += len(stale)
        return stale

    def _pop_idle(self, key: str) -> ExecutionEnvironment | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        environment = idle.pop()
        if not idle:
            del self._idle[key]
        return environment

    def _remove_idle(self, environment: ExecutionEnvironment) -> None:
        key = environment.snapshot.pool_key
        idle = self._idle.get(key, [])
        idle.remove(environment)
        if not idle:
            self._idle.pop(key, None)

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
        return len(self._initializing) + sum(len(s) for s in self._creating.values())

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
        self._counts["cold_starts"] += 1
        in_flight = self._cold_starts_in_flight()
        self._counts["peak_cold_starts_in_flight"] = max(
            self._counts["peak_cold_starts_in_flight"], in_flight
        )

    def _end_creation(self, ticket: _Ticket) -> None:
        creating = self._creating.get(ticket.key, [])
        creating.remove(ticket.reserved_at)
        if not creating:
            self._creating.pop(ticket.key, None)

    def _choose_victims(self, ticket: _Ticket) -> list[ExecutionEnvironment]:
        """The least recently used idle EEs whose eviction makes room, or none if evicting
        every idle EE would not (or EEs already stopping will make room anyway)."""
        if self._room_queue[0] is not ticket:
            return []
        shortfall = self._live_mb - self._stopping_mb + ticket.need_mb - self.memory_budget_mb
        if shortfall <= 0:
            return []
        idle = sorted((e for group in self._idle.values() for e in group), key=_last_used)
        victims: list[ExecutionEnvironment] = []
        freed = 0
        for environment in idle:
            if freed >= shortfall:
                break
            victims.append(environment)
            freed += environment.memory_mb
        if freed < shortfall:
            return []
        for environment in victims:
            self._remove_idle(environment)
            self._doom(environment)
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

    def _doom(self, environment: ExecutionEnvironment) -> None:
        """Mark an EE that has left the pool's lists as stopping; its memory stays counted
        until it is gone."""
        self._stopping_mb += environment.memory_mb

    # --- stopping EEs -------------------------------------------------------------------------

    def _stop(self, environment: ExecutionEnvironment, *, swallow: bool = True) -> None:
        try:
            environment.destroy(wait_for_api=False)
        except Exception:
            if not swallow:
                raise
            logger.exception("could not stop execution environment %s", environment.environment_id)
        finally:
            with self._lock:
                self._live_mb -= environment.memory_mb
                self._stopping_mb -= environment.memory_mb
                self._changed.notify_all()

    def _stop_all(self, environments: list[ExecutionEnvironment]) -> None:
        for environment in environments:
            self._stop(environment)

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(environments) for environments in self._idle.values())

    def reap_idle(self) -> int:
        """Stop idle EEs unused for the keep-alive, and any whose runtime has gone away."""
        cutoff = time.monotonic() - self.keep_alive
        with self._lock:
            expired = [
                e
                for group in self._idle.values()
                for e in group
                if e.last_used < cutoff or not e.is_alive()
            ]
            for environment in expired:
                self._remove_idle(environment)
                self._doom(environment)
            self._counts["expired"] += len(expired)
            self._timings.keep_only({*self._idle, *self._busy, *self._creating})
        self._stop_all(expired)
        return len(expired)

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            environments = [e for group in self._idle.values() for e in group]
            self._idle.clear()
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
            )
            return {
                **{name: self._counts[name] for name in counters},
                "environments": idle + busy + starting,
                "idle_environments": idle,
                "busy_environments": busy,
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


def _last_used(environment: ExecutionEnvironment) -> float:
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
            )
            atexit.register(_pool.shutdown)
        return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown()
