"""What the execution-environment pool holds, and the bookkeeping on it.

The pool (invocations.environments) is built on this: its lists of idle, busy and starting
environments, the memory they commit against the budget, the line of acquires waiting for
room, stopping what leaves the pool, and what it reports. The methods before the section
on stopping are called with the pool's lock held; the others take it themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from invocations.environment_estimates import EnvironmentTimings
from invocations.execution_environment import ExecutionEnvironment, HostedEnvironment
from invocations.function_snapshot import FunctionSnapshot
from invocations.sandboxes.base import SandboxBackend
from invocations.stem_cells import StemCell, StemShape

logger = logging.getLogger(__name__)

# The end of a cold start (the runtime's first poll of its Runtime API) does not wake the
# pool, so waiters that depend on it look again this often while one is initializing.
INIT_POLL_SECONDS = 0.01


class EnvironmentCapacityError(Exception):
    """No execution environment could be had in time: the memory budget is held by busy
    environments, or too many are starting. Nothing ran, so a retry later can succeed."""


@dataclass(eq=False)
class AcquireTicket:
    """One acquire() in progress."""

    snapshot: FunctionSnapshot
    wait: float
    deadline: float
    burst_started: float | None = None
    reserved_at: float = 0.0
    waited: set[str] = field(default_factory=set)
    # Wakes this acquire alone (on the pool's lock): an environment going idle wakes one
    # sleeping acquire of its function, not every thread that waits on the pool.
    wakeup: threading.Condition | None = None
    sleeping: bool = False

    @property
    def key(self) -> str:
        return self.snapshot.pool_key

    @property
    def need_mb(self) -> int:
        return self.snapshot.memory_size


class EnvironmentPoolState:
    """The pool's environments and memory, guarded by one lock; `_changed` wakes the
    acquires and the pre-warming thread waiting on it."""

    # Configured by the pool before the state is set up.
    backend: SandboxBackend
    keep_alive: float
    memory_budget_mb: int
    max_cold_starts: int
    burst_wait: float
    capacity_wait: float
    prewarm: dict[StemShape, int]

    def __init__(self) -> None:
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._busy: dict[str, set[ExecutionEnvironment]] = {}
        self._creating: dict[str, list[float]] = {}
        self._initializing: set[ExecutionEnvironment] = set()
        self._waiting: dict[str, list[AcquireTicket]] = {}
        self._room_queue: deque[AcquireTicket] = deque()
        self._stems: dict[StemShape, list[StemCell]] = {}
        self._stems_starting: Counter[StemShape] = Counter()
        self._provisioned: dict[str, tuple[FunctionSnapshot, int]] = {}
        self._provisioning: Counter[str] = Counter()
        self._retry_after: dict[object, float] = {}
        self._live_mb = 0
        self._stopping_mb = 0
        self._timings = EnvironmentTimings()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._provisioners: set[threading.Thread] = set()

    # --- the lists of environments and waiters ----------------------------------------------

    def _leave(self, ticket: AcquireTicket) -> None:
        waiting = self._waiting.get(ticket.key, [])
        if ticket in waiting:
            waiting.remove(ticket)
        if not waiting:
            self._waiting.pop(ticket.key, None)
        elif self._idle.get(ticket.key):
            # An idle environment this acquire was woken for but did not take goes on to
            # the next one.
            self._wake_one(ticket.key)
        if ticket in self._room_queue:
            self._room_queue.remove(ticket)
            self._wake_all()

    def _wake_all(self) -> None:
        """Something changed that any waiter may care about (memory, a start slot)."""
        self._changed.notify_all()
        for tickets in self._waiting.values():
            for ticket in tickets:
                if ticket.sleeping and ticket.wakeup is not None:
                    ticket.wakeup.notify()

    def _wake_one(self, key: str) -> None:
        """An environment of `key` went idle: one sleeping acquire of it can take it."""
        self._changed.notify_all()
        for ticket in self._waiting.get(key, ()):
            if ticket.sleeping and ticket.wakeup is not None:
                ticket.wakeup.notify()
                return

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

    def _provisioned_target(self, key: str) -> int:
        target = self._provisioned.get(key)
        return target[1] if target is not None else 0

    def _provisioned_count(self, key: str) -> int:
        idle = self._idle.get(key, [])
        busy = self._busy.get(key, set())
        return sum(1 for e in [*idle, *busy] if e.provisioned)

    # --- memory and cold-start slots --------------------------------------------------------

    def _cold_starts_in_flight(self) -> int:
        return (
            len(self._initializing)
            + sum(len(s) for s in self._creating.values())
            + sum(self._stems_starting.values())
            + sum(self._provisioning.values())
        )

    def _has_room(self, ticket: AcquireTicket) -> bool:
        fits = self._live_mb + ticket.need_mb <= self.memory_budget_mb
        if not self._room_queue and fits:
            return True
        if ticket not in self._room_queue:
            self._room_queue.append(ticket)
        return self._room_queue[0] is ticket and fits

    def _reserve(self, ticket: AcquireTicket, now: float) -> None:
        self._leave(ticket)
        self._live_mb += ticket.need_mb
        ticket.reserved_at = now
        self._creating.setdefault(ticket.key, []).append(now)
        in_flight = self._cold_starts_in_flight()
        self._counts["peak_cold_starts_in_flight"] = max(
            self._counts["peak_cold_starts_in_flight"], in_flight
        )

    def _end_creation(self, ticket: AcquireTicket) -> None:
        creating = self._creating.get(ticket.key, [])
        creating.remove(ticket.reserved_at)
        if not creating:
            self._creating.pop(ticket.key, None)

    def _doom(self, environment: HostedEnvironment) -> None:
        """Mark an environment that has left the pool's lists as stopping; its memory stays
        counted until it is gone."""
        self._stopping_mb += environment.memory_mb

    def _choose_victims(self, ticket: AcquireTicket) -> list[HostedEnvironment]:
        """Idle environments whose eviction makes room, or none if evicting all of them
        would not (or environments already stopping will make room anyway)."""
        if self._room_queue[0] is not ticket:
            return []
        return self._victims_for(ticket.need_mb)

    def _victims_for(self, need_mb: int) -> list[HostedEnvironment]:
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
        victims: list[HostedEnvironment] = []
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

    # --- waiting ----------------------------------------------------------------------------

    def _note_wait(self, ticket: AcquireTicket, kind: str) -> None:
        if kind not in ticket.waited:
            ticket.waited.add(kind)
            self._counts[kind] += 1

    def _wait_or_fail(self, ticket: AcquireTicket, now: float, message: str) -> None:
        if now >= ticket.deadline:
            self._counts["capacity_errors"] += 1
            raise EnvironmentCapacityError(message)
        self._wait(ticket, ticket.deadline - now)

    def _wait(self, ticket: AcquireTicket, seconds: float) -> None:
        if self._initializing:
            seconds = min(seconds, INIT_POLL_SECONDS)
        if ticket.wakeup is None:
            ticket.wakeup = threading.Condition(self._lock)
        ticket.sleeping = True
        try:
            ticket.wakeup.wait(max(0.0, seconds))
        finally:
            ticket.sleeping = False

    # --- stopping environments --------------------------------------------------------------

    def _stop(self, environment: HostedEnvironment, *, swallow: bool = True) -> None:
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
                self._wake_all()

    def _stop_all(self, environments: Sequence[HostedEnvironment]) -> None:
        for environment in environments:
            self._stop(environment)

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
            dead: list[HostedEnvironment] = [
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
                self._wake_all()
        self._stop_all([*expired, *dead])
        return len(expired)

    def _reap_forever(self) -> None:
        interval = max(0.1, min(30.0, self.keep_alive / 4))
        while not self._stopping.wait(interval):
            try:
                self.reap_idle()
            except Exception:
                logger.exception("reaping idle execution environments failed")

    # --- reporting --------------------------------------------------------------------------

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(environments) for environments in self._idle.values())

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


def _last_used(environment: HostedEnvironment) -> float:
    return environment.last_used
