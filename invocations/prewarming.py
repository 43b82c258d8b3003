"""The environments the pool starts ahead of demand: its reserve of stem cells (see
invocations.stem_cells) and the provisioned EEs of functions with provisioned concurrency.

One background thread starts them, provisioned EEs first, never on an invocation's path
and only into memory nobody waits for; each provisioned EE is initialised on a thread of
its own.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.db import connections

from invocations.environment_pool_state import (
    INIT_POLL_SECONDS,
    AcquireTicket,
    EnvironmentCapacityError,
    EnvironmentPoolState,
)
from invocations.execution_environment import (
    PROVISIONED_CONCURRENCY,
    ExecutionEnvironment,
    HostedEnvironment,
)
from invocations.function_snapshot import FunctionSnapshot
from invocations.sandboxes.base import SandboxError
from invocations.stem_cells import StemCell, StemShape, stem_can_serve

logger = logging.getLogger(__name__)

# After a stem cell or provisioned EE failed to start, its kind is not tried again sooner.
_PREWARM_RETRY_SECONDS = 5.0
# How long a provisioned EE's init may take (as Lambda's init phase outside the timeout).
PROVISIONED_INIT_TIMEOUT = 10.0


class Prewarming(EnvironmentPoolState):
    """Stem cells and provisioned EEs: kept by the pre-warming thread (`_prewarm_forever`)."""

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
            self._wake_all()
        self._stop_all(surplus)

    def provisioned_status(self) -> dict[str, tuple[int, int]]:
        """Pool key -> (initialised provisioned EEs, how many were asked for)."""
        with self._lock:
            return {
                key: (self._provisioned_count(key), count)
                for key, (_, count) in self._provisioned.items()
            }

    def _take_stem(self, ticket: AcquireTicket, now: float) -> StemCell | None:
        """An idle stem cell that can become the ticket's function, taken out of the
        reserve; called with the lock held."""
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
        self._wake_all()
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

    def _next_prewarm_job(self) -> StemShape | FunctionSnapshot | list[HostedEnvironment] | None:
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
                self._wake_all()
            return
        with self._lock:
            self._stems_starting[shape] -= 1
            keep = not self._stopping.is_set()
            if keep:
                self._stems.setdefault(shape, []).append(stem)
            else:
                self._doom(stem)
            self._wake_all()
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
                self._wake_all()
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
            self._wake_all()
        if not keep:
            self._stop(environment)


def _await_init(environment: ExecutionEnvironment) -> None:
    """Wait until the runtime has finished its init (its first poll for an event)."""
    give_up = time.perf_counter() + PROVISIONED_INIT_TIMEOUT
    while environment.api.first_poll_at is None:
        reason = environment.sandbox.exit_reason()
        if reason is not None:
            raise SandboxError(f"the runtime ended during init: {reason}")
        if time.perf_counter() > give_up:
            raise SandboxError(f"init did not finish in {PROVISIONED_INIT_TIMEOUT:.0f} s")
        time.sleep(INIT_POLL_SECONDS)
