from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(label: str, samples_ms: Sequence[float]) -> str:
    return (
        f"{label:<44} n={len(samples_ms):<4} p50={percentile(samples_ms, 0.5):7.2f} ms  "
        f"p99={percentile(samples_ms, 0.99):7.2f} ms  mean={statistics.fmean(samples_ms):7.2f} ms"
    )
