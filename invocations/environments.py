"""The worker's pool of execution environments (EEs), one per process: `get_pool()`.

What an EE and a stem cell are: invocations.execution_environment and
invocations.stem_cells. The pool is assembled from what it holds and the bookkeeping on it
(invocations.environment_pool_state), its burst control (invocations.burst_control), and
the environments it starts ahead of demand (invocations.prewarming); here it hands EEs out
and takes them back.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from celery.signals import worker_ready
from django.conf import settings

from invocations.burst_control import BurstControl
from invocations.environment_pool_state import AcquireTicket

# Re-exported: callers catch what acquire raises without knowing where the pool's parts live.
from invocations.environment_pool_state import (
    EnvironmentCapacityError as EnvironmentCapacityError,
)
from invocations.execution_environment import ExecutionEnvironment, HostedEnvironment
from invocations.function_snapshot import FunctionSnapshot
from invocations.prewarming import Prewarming
from invocations.sandboxes import get_backend
from invocations.sandboxes.base import SandboxBackend, SandboxError
from invocations.stem_cells import StemCell, StemShape, prewarm_for

logger = logging.getLogger(__name__)

# How long shutdown waits for an environment being started ahead of demand.
_SHUTDOWN_JOIN_SECONDS = 30.0


class EnvironmentPool(BurstControl, Prewarming):
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
    be free, as long as the pool's estimates say that is shorter than starting an EE (see
    invocations.burst_control).
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
        self.prewarm = {}
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
        super().__init__()
        self._reaper = threading.Thread(target=self._reap_forever, daemon=True, name="ee-reaper")
        self._reaper.start()
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
        ticket = AcquireTicket(snapshot, wait=wait, deadline=time.perf_counter() + wait)
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
                self._wake_one(key)
                return
            self._counts["discarded"] += 1
            self._doom(environment)
            self._wake_all()
        self._stop(environment, swallow=False)

    def _acquire(self, ticket: AcquireTicket) -> tuple[ExecutionEnvironment, bool]:
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

    def _place(self, ticket: AcquireTicket) -> _Decision:
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
                    self._wait(ticket, min(until, ticket.deadline) - now)
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

    def _create(self, ticket: AcquireTicket) -> ExecutionEnvironment:
        try:
            environment = ExecutionEnvironment(ticket.snapshot, self.backend, uuid.uuid4().hex)
        except BaseException:
            with self._lock:
                self._end_creation(ticket)
                self._live_mb -= ticket.need_mb
                self._counts["cold_start_failures"] += 1
                self._wake_all()
            raise
        self._started(ticket, environment)
        return environment

    def _specialise(self, ticket: AcquireTicket, stem: StemCell) -> ExecutionEnvironment | None:
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
                self._wake_all()
            return None
        self._started(ticket, environment, counter="stem_hits")
        return environment

    def _started(
        self, ticket: AcquireTicket, environment: ExecutionEnvironment, *, counter: str = ""
    ) -> None:
        with self._lock:
            if counter:
                self._counts[counter] += 1
            self._end_creation(ticket)
            self._initializing.add(environment)
            self._busy.setdefault(ticket.key, set()).add(environment)
            self._wake_all()

    def _evict(self, victims: list[HostedEnvironment], ticket: AcquireTicket) -> None:
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

    # --- shutdown ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            self._wake_all()
            threads = [self._prewarmer, *self._provisioners]
        # What they are starting now, they stop themselves when they see the pool stopping.
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=_SHUTDOWN_JOIN_SECONDS)
        with self._lock:
            environments: list[HostedEnvironment] = [
                e for group in self._idle.values() for e in group
            ]
            environments += [s for group in self._stems.values() for s in group]
            self._idle.clear()
            self._stems.clear()
            self._provisioned.clear()
            for environment in environments:
                self._doom(environment)
            self._wake_all()
        self._stop_all(environments)


@dataclass
class _Decision:
    """What an acquire does next: take a warm EE, specialise a stem cell, start an EE
    (cold), or evict idle environments and decide again."""

    kind: str
    environment: ExecutionEnvironment | None = None
    stem: StemCell | None = None
    victims: list[HostedEnvironment] = field(default_factory=list)


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
