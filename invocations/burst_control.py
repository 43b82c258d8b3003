"""Burst control: whether an acquire waits for an EE of its key about to be free rather than
start one more.

It follows Knative's activator rather than OpenWhisk's one container per
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

from __future__ import annotations

from invocations.environment_estimates import nth_availability
from invocations.environment_pool_state import AcquireTicket, EnvironmentPoolState


class BurstControl(EnvironmentPoolState):
    """The pool's estimates of when an EE would be free for a waiter; called with the
    pool's lock held."""

    def _burst_wait_until(self, ticket: AcquireTicket, now: float) -> float | None:
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

    def _expected_wait(self, ticket: AcquireTicket, now: float, bound: float) -> float | None:
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
