"""What a load run must leave behind: every accepted invocation recorded and terminal, no
containers of a stopped worker, no growth of the worker's open files or memory."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from invocations.sandboxes.docker import WORKER_LABEL


@dataclass(frozen=True)
class ProcessUsage:
    """A worker's open files, memory and threads, and its execution environments."""

    open_files: int
    rss_mb: float
    threads: int
    environments: int

    @classmethod
    def of(cls, pid: int) -> ProcessUsage:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        fields = {line.split(":", 1)[0]: line.split(":", 1)[1].split() for line in status}
        return cls(
            open_files=len(list(Path(f"/proc/{pid}/fd").iterdir())),
            rss_mb=int(fields["VmRSS"][0]) / 1024,
            threads=int(fields["Threads"][0]),
            environments=containers_of(pid),
        )


@dataclass(frozen=True)
class SettleCheck:
    accepted: int
    recorded: int
    recorded_in_window: int
    non_terminal: int
    settle_seconds: float

    @property
    def lost(self) -> int:
        return self.accepted - self.recorded


def settle(
    function_name: str,
    *,
    timeout: float,
    since: float | None = None,
    accepted: set[str] | None = None,
) -> SettleCheck:
    """Wait until no invocation of the function is queued or running (async ones finish
    after their callers are answered), then compare the records with what was accepted."""
    from invocations.models import TERMINAL_STATUSES, Invocation

    records = Invocation.objects.filter(function_name=function_name)
    if since is not None:
        records = records.filter(created_at__gte=datetime.fromtimestamp(since, UTC))
    started = time.monotonic()
    while True:
        non_terminal = records.exclude(status__in=TERMINAL_STATUSES).count()
        if non_terminal == 0 or time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    ids = sorted(accepted or ())
    recorded = 0
    for offset in range(0, len(ids), 1000):
        recorded += Invocation.objects.filter(request_id__in=ids[offset : offset + 1000]).count()
    return SettleCheck(
        accepted=len(ids),
        recorded=recorded,
        recorded_in_window=records.count(),
        non_terminal=non_terminal,
        settle_seconds=time.monotonic() - started,
    )


def runtime_image_present() -> bool:
    """Whether the runtime image exists (building it again is `make runtimes`' job)."""
    from invocations.runtimes import image_for

    inspected = subprocess.run(
        ["docker", "image", "inspect", image_for("python3.11")], capture_output=True
    )
    return inspected.returncode == 0


def containers_of(worker_pid: int) -> int:
    """Containers (running or not) the worker process with this pid labelled as its own."""
    label = f"{WORKER_LABEL}={socket.gethostname()}:{worker_pid}"
    output = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"label={label}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return len(output.split())


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
MACHINE = "whole machine (everyone)"
_CGROUP_CPU_FILES = (
    "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",  # v1: nanoseconds
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",  # v2: usage_usec line
)


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def process_tree(pid: int) -> list[int]:
    """The process and its children (gunicorn's master and its worker)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def _processes_named(prefix: str, *, containing: str = "") -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text.startswith(prefix) and containing in text:
            pids.append(int(cmdline.parent.name))
    return pids


def _container_cpu_seconds(container_id: str) -> float:
    for template in _CGROUP_CPU_FILES:
        path = Path(template.format(id=container_id))
        if not path.exists():
            continue
        text = path.read_text()
        if path.name == "cpuacct.usage":
            return int(text) / 1e9
        for line in text.splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    return 0.0


def _container_ids(worker_pid: int) -> list[str]:
    label = f"{WORKER_LABEL}={socket.gethostname()}:{worker_pid}"
    output = subprocess.run(
        ["docker", "ps", "--quiet", "--no-trunc", "--filter", f"label={label}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return output.split()


def _machine_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_SECOND


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each part of the stack. Postgres backends that ended
    between two samples are not counted (the pools keep theirs open)."""

    seconds: dict[str, float]

    @classmethod
    def take(cls, *, worker_pid: int, web_pid: int, database: str) -> CpuSample:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        # The Postgres server processes serving connections to this database.
        backends = _processes_named("postgres: ", containing=f" {database} ")
        return cls(
            {
                "load clients (this process)": usage.ru_utime + usage.ru_stime,
                "web (gunicorn)": sum(process_cpu_seconds(pid) for pid in process_tree(web_pid)),
                "worker (celery)": process_cpu_seconds(worker_pid),
                "function containers": sum(
                    _container_cpu_seconds(cid) for cid in _container_ids(worker_pid)
                ),
                "postgres backends": sum(process_cpu_seconds(pid) for pid in backends),
                "redis (shared)": sum(
                    process_cpu_seconds(pid) for pid in _processes_named("redis-server")
                ),
                MACHINE: _machine_busy_seconds(),
            }
        )

    def since(self, earlier: CpuSample) -> dict[str, float]:
        return {
            name: value - earlier.seconds.get(name, 0.0) for name, value in self.seconds.items()
        }
