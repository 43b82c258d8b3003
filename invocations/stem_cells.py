"""Stem cells: pre-warmed generic execution environments.

A stem cell is a sandbox started ahead of demand for a runtime, memory size and ephemeral
storage, running the runtime's stem program with a neutral environment and an empty task
root. A cold start that finds one specialises it (the function's code linked into its task
root, its handler and environment handed over through the Runtime API) instead of starting
a sandbox; from then on it is an ordinary EE of that function (see
invocations.execution_environment). The pool keeps them as its stem-cell reserve (see
invocations.prewarming).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from invocations.execution_environment import (
    RUNTIME_DIR_VARIABLES,
    RUNTIME_VARIABLES,
    HostedEnvironment,
)
from invocations.function_snapshot import FunctionSnapshot
from invocations.sandboxes.base import EnvironmentSpec, SandboxBackend

DEFAULT_EPHEMERAL_STORAGE_MB = 512
# Variables the interpreter or the dynamic loader read once, when the process starts: a
# stem cell started without the function's values for them cannot serve it.
_READ_AT_PROCESS_START = ("LD_", "LC_", "PYTHON", "MALLOC_", "GLIBC_")
_READ_AT_PROCESS_START_NAMES = frozenset({"LANG", "LANGUAGE"})
# Handled by the stem program: it fixes sys.path as the interpreter would have.
_EMULATED_AT_PROCESS_START = frozenset({"PYTHONPATH"})


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


def stem_environment() -> dict[str, str]:
    """A stem cell's environment: nothing of any function, nothing of Stratus."""
    return {**RUNTIME_VARIABLES, **RUNTIME_DIR_VARIABLES}


def stem_can_serve(snapshot: FunctionSnapshot) -> bool:
    """Whether a stem cell can become this function indistinguishably: not if the function
    sets a variable that only takes effect when a process starts."""
    neutral = stem_environment()
    wanted = {**RUNTIME_VARIABLES, **snapshot.environment}
    for name in set(neutral) | set(wanted):
        read_at_start = name in _READ_AT_PROCESS_START_NAMES or name.startswith(
            _READ_AT_PROCESS_START
        )
        if name in _EMULATED_AT_PROCESS_START or not read_at_start:
            continue
        if wanted.get(name) != neutral.get(name):
            return False
    return True


class StemCell(HostedEnvironment):
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
