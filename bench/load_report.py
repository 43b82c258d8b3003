"""What a load run prints, and whether it passed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bench.load_checks import MACHINE, ProcessUsage, SettleCheck
from bench.load_client import EVENT, SYNC, PhaseOutcome, Sample
from bench.stats import percentile

# Open files the worker may gain in the second phase (sockets that happen to be open), plus
# those of each execution environment the pool added meanwhile (its Runtime API server's
# sockets, its output pipe, the engine's attach stream: 14 measured with the Docker sandbox).
FD_GROWTH_ALLOWED = 4
FDS_PER_ENVIRONMENT = 16
# Warm synchronous invokes a second this 2-core machine is to serve (a figure to report, not
# a check: the run passes or fails on what it leaves behind).
SYNC_TARGET_PER_SECOND = 200


def _latency(samples: list[Sample]) -> str:
    times = [s.ms for s in samples if s.status in (200, 202) and not s.throttled and not s.error]
    if not times:
        return "no successful calls"
    return f"p50={percentile(times, 0.5):7.2f} ms  p99={percentile(times, 0.99):7.2f} ms"


def _phase_lines(label: str, outcome: PhaseOutcome) -> list[str]:
    lines = [f"{label} ({outcome.duration:.1f} s, {len(outcome.samples)} calls)"]
    for kind in (SYNC, EVENT):
        samples = outcome.of_kind(kind)
        if not samples:
            continue
        ok = [s for s in samples if s.status in (200, 202) and not s.throttled and not s.error]
        throttled = sum(s.throttled for s in samples)
        errors = [s for s in samples if s.error]
        lines.append(
            f"  {kind:<16} {len(ok) / outcome.duration:7.1f}/s  {_latency(samples)}  "
            f"throttled={throttled} errors={len(errors)}"
        )
        lines.extend(f"    e.g. {error.error}" for error in errors[:3])
    return lines


def _answered_per_second(outcome: PhaseOutcome, kind: str) -> float:
    ok = [s for s in outcome.of_kind(kind) if s.status in (200, 202) and not s.throttled]
    return len([s for s in ok if not s.error]) / outcome.duration


def _cpu_lines(cpu: dict[str, float], outcome: PhaseOutcome) -> list[str]:
    """CPU per call of each part, and the share of the machine's CPUs the run kept busy."""
    calls = max(1, len(outcome.samples))
    cores = os.cpu_count() or 1
    parts = [f"{name} {seconds * 1000 / calls:.2f}" for name, seconds in cpu.items() if seconds > 0]
    machine = cpu.get(MACHINE, 0.0) / (outcome.duration * cores)
    return [
        f"  CPU ms per call: {', '.join(parts)}",
        f"  machine busy: {machine:.0%} of {cores} CPUs",
    ]


@dataclass
class Report:
    clients: int
    duration: float
    setup: str = ""
    signing_us: float = 0.0
    floor: PhaseOutcome | None = None
    floor_cpu: dict[str, float] = field(default_factory=dict)
    phase_cpu: list[dict[str, float]] = field(default_factory=list)
    phases: list[PhaseOutcome] = field(default_factory=list)
    checks: list[SettleCheck] = field(default_factory=list)
    usage: list[tuple[str, ProcessUsage]] = field(default_factory=list)
    containers_running: int = 0
    containers_after_stop: int = -1

    def fd_growth_in_second_phase(self) -> int:
        return self.usage[-1][1].open_files - self.usage[-2][1].open_files

    def environment_growth_in_second_phase(self) -> int:
        return self.usage[-1][1].environments - self.usage[-2][1].environments

    def fds_within_bounds(self) -> bool:
        added = max(0, self.environment_growth_in_second_phase())
        allowed = FD_GROWTH_ALLOWED + FDS_PER_ENVIRONMENT * added
        return self.fd_growth_in_second_phase() <= allowed

    def ok(self) -> bool:
        return (
            all(check.lost == 0 and check.non_terminal == 0 for check in self.checks)
            and self.containers_after_stop == 0
            and self.fds_within_bounds()
            and all(not s.error for phase in self.phases for s in phase.samples)
        )

    def render(self) -> str:
        lines = [
            f"Stratus load: {self.clients} clients, {self.duration:.0f} s per phase, "
            f"Docker sandbox, loopback; {self.setup}",
            f"SigV4 signing (botocore SigV4Auth) per request: {self.signing_us:.0f} us",
        ]
        if self.floor is not None:
            lines += _phase_lines("floor: bare Celery no-op round trip", self.floor)
            lines += _cpu_lines(self.floor_cpu, self.floor)
        for number, (phase, check) in enumerate(zip(self.phases, self.checks, strict=True), 1):
            lines += _phase_lines(f"phase {number}: Lambda API invoke", phase)
            if number <= len(self.phase_cpu):
                lines += _cpu_lines(self.phase_cpu[number - 1], phase)
            lines.append(
                f"  accepted={check.accepted} recorded={check.recorded} lost={check.lost} "
                f"non-terminal={check.non_terminal} (records in the phase: "
                f"{check.recorded_in_window}; all terminal {check.settle_seconds:.1f} s after)"
            )
        for label, usage in self.usage:
            lines.append(
                f"worker {label:<14} open files={usage.open_files:<4} "
                f"RSS={usage.rss_mb:6.1f} MB threads={usage.threads} "
                f"environments={usage.environments}"
            )
        if len(self.usage) >= 2:
            rss = self.usage[-1][1].rss_mb - self.usage[-2][1].rss_mb
            lines.append(
                f"second phase: open files {self.fd_growth_in_second_phase():+d}, RSS {rss:+.1f} MB"
            )
        lines.append(
            f"containers of the worker: {self.containers_running} while running, "
            f"{self.containers_after_stop} after it stopped"
        )
        if self.phases:
            rates = [_answered_per_second(phase, SYNC) for phase in self.phases]
            verdict = "met" if min(rates) >= SYNC_TARGET_PER_SECOND else "missed"
            summary = (
                f"warm synchronous invokes: {', '.join(f'{rate:.0f}/s' for rate in rates)} "
                f"(target {SYNC_TARGET_PER_SECOND}/s: {verdict})"
            )
            if self.floor is not None:
                summary += (
                    f", beside a Celery floor of {_answered_per_second(self.floor, SYNC):.0f}/s"
                )
            lines.append(summary)
        lines.append("PASS" if self.ok() else "FAIL")
        return "\n".join(lines)
