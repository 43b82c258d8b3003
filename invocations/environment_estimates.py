"""The measured durations the environment pool plans with, and what it estimates from them
(see invocations.burst_control)."""

from __future__ import annotations

import heapq

# Weight of the newest sample in the smoothed (EWMA) durations the pool plans with.
_SMOOTHING = 0.3


class EnvironmentTimings:
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
