"""Runs one invocation in an execution environment and reports what happened, with the
log lines Lambda would print for it."""

from __future__ import annotations

import json
import math
import secrets
import select
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from invocations.environments import EnvironmentPool
from invocations.execution_environment import ExecutionEnvironment
from invocations.function_snapshot import FunctionSnapshot
from invocations.runtime_api import RuntimeEvent, RuntimeOutcome

# Lambda gives a cold start's init phase its own allowance on top of the function timeout.
INIT_ALLOWANCE_SECONDS = 10.0
_EXIT_GRACE_SECONDS = 0.5
RESPONSE_TOO_LARGE_MESSAGE = (
    "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
)


@dataclass(frozen=True)
class InvocationRequest:
    request_id: str
    payload: bytes
    client_context: str = ""


@dataclass
class LogLine:
    timestamp: datetime
    message: str


@dataclass
class ExecutionResult:
    succeeded: bool
    response: bytes
    error_type: str
    error_message: str
    duration_ms: float
    billed_duration_ms: int
    init_duration_ms: float | None
    max_memory_used_mb: int
    log_stream_name: str
    log_lines: list[LogLine] = field(default_factory=list)
    #: Served by an EE initialised ahead of demand for provisioned concurrency.
    provisioned: bool = False


class _OutputCollector:
    """Splits runtime output into lines, capped per invocation."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.kept = 0
        self.truncated = False
        self._partial = b""
        self.lines: list[LogLine] = []
        self.init_line_count: int | None = None

    def mark_init_end(self) -> None:
        self.init_line_count = len(self.lines)

    def feed(self, data: bytes) -> None:
        if not data:
            return
        stamp = datetime.now(tz=UTC)
        if self.kept >= self.max_bytes:
            self._truncate(stamp)
            return
        data = data[: self.max_bytes - self.kept]
        self.kept += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        for raw in complete:
            self.lines.append(LogLine(stamp, raw.decode("utf-8", "replace")))
        if self.kept >= self.max_bytes:
            self._truncate(stamp)

    def finish(self) -> None:
        if self._partial:
            stamp = datetime.now(tz=UTC)
            self.lines.append(LogLine(stamp, self._partial.decode("utf-8", "replace")))
            self._partial = b""

    def _truncate(self, stamp: datetime) -> None:
        if not self.truncated:
            self.truncated = True
            self.finish()
            marker = (
                f"[Stratus] Log output truncated: over {self.max_bytes} bytes in one invocation."
            )
            self.lines.append(LogLine(stamp, marker))


def execute(
    pool: EnvironmentPool,
    snapshot: FunctionSnapshot,
    request: InvocationRequest,
    *,
    acquire_timeout: float | None = None,
) -> ExecutionResult:
    """Run one invocation; `acquire_timeout` bounds the wait for an execution environment
    (None: the pool's own limit), past which EnvironmentCapacityError is raised."""
    environment, cold = pool.acquire(snapshot, timeout=acquire_timeout)
    reusable = False
    try:
        result, reusable = _run(environment, cold, snapshot, request)
    finally:
        pool.release(environment, reusable=reusable)
    return result


def _run(
    environment: ExecutionEnvironment,
    cold: bool,
    snapshot: FunctionSnapshot,
    request: InvocationRequest,
) -> tuple[ExecutionResult, bool]:
    api = environment.api
    sandbox = environment.sandbox
    collector = _OutputCollector(settings.STRATUS_MAX_LOG_BYTES)
    submitted_at = time.perf_counter()
    api.submit(
        RuntimeEvent(
            request_id=request.request_id,
            payload=request.payload,
            timeout_ms=snapshot.timeout * 1000,
            invoked_function_arn=snapshot.arn,
            trace_id=_trace_id(),
            client_context=request.client_context,
        )
    )
    outcome: RuntimeOutcome | None = None
    exit_reason: str | None = None
    timed_out = False
    log_fd, ready_fd = sandbox.log_fileno(), api.ready_fileno()
    while True:
        if api.delivered_at is not None:
            deadline = api.delivered_at + snapshot.timeout
        elif cold:
            deadline = environment.started_at + snapshot.timeout + INIT_ALLOWANCE_SECONDS
        else:
            deadline = submitted_at + snapshot.timeout
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            break
        readable, _, _ = select.select([log_fd, ready_fd], [], [], min(remaining, 0.25))
        if log_fd in readable:
            collector.feed(sandbox.read_output())
        if ready_fd in readable:
            api.clear_ready()
            outcome = api.take_outcome()
            if outcome is not None:
                break
            if not api.gate_open and api.first_poll_at is not None:
                # Init is over: everything the runtime printed so far is init output.
                collector.feed(sandbox.read_output())
                collector.finish()
                collector.mark_init_end()
                api.open_gate()
        exit_reason = sandbox.exit_reason()
        if exit_reason is not None:
            outcome = api.take_outcome()
            break
    if outcome is not None and outcome.kind == "init_error":
        _wait_for_exit(environment)
    collector.feed(sandbox.read_output())
    collector.finish()
    ended_at = time.perf_counter()
    return _result(
        environment,
        cold,
        snapshot,
        request,
        collector,
        outcome=outcome,
        exit_reason=exit_reason,
        timed_out=timed_out,
        ended_at=ended_at,
    )


def _wait_for_exit(environment: ExecutionEnvironment) -> None:
    give_up = time.perf_counter() + _EXIT_GRACE_SECONDS
    while environment.sandbox.exit_reason() is None and time.perf_counter() < give_up:
        time.sleep(0.01)


def _result(
    environment: ExecutionEnvironment,
    cold: bool,
    snapshot: FunctionSnapshot,
    request: InvocationRequest,
    collector: _OutputCollector,
    *,
    outcome: RuntimeOutcome | None,
    exit_reason: str | None,
    timed_out: bool,
    ended_at: float,
) -> tuple[ExecutionResult, bool]:
    api = environment.api
    request_id = request.request_id
    invoke_started = api.delivered_at or ended_at
    init_duration_ms = None
    if cold:
        init_end = api.first_poll_at or (outcome.posted_at if outcome else ended_at)
        init_duration_ms = (init_end - environment.started_at) * 1000
    finished = outcome.posted_at if outcome and outcome.posted_at else ended_at
    duration_ms = max(0.0, (finished - invoke_started) * 1000)
    reusable = False
    platform_lines: list[str] = []
    status_fields = ""
    init_lines: list[str] = []

    if timed_out:
        environment.sandbox.stop()
        elapsed = (
            (ended_at - (api.delivered_at or environment.started_at))
            if cold
            else (ended_at - invoke_started)
        )
        duration_ms = elapsed * 1000
        seconds = f"{elapsed:.2f}"
        error_type = "Sandbox.Timedout"
        error_message = f"RequestId: {request_id} Error: Task timed out after {seconds} seconds"
        stamp = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        platform_lines.append(f"{stamp} {request_id} Task timed out after {seconds} seconds")
        response = _json({"errorMessage": error_message, "errorType": error_type})
        status_fields = "Status: timeout\t"
        succeeded = False
    elif outcome is None:
        reason = exit_reason or "exit status 1"
        error_type = "Runtime.ExitError"
        error_message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
        platform_lines.append(error_message)
        platform_lines.append(error_type)
        response = _json({"errorMessage": error_message, "errorType": error_type})
        status_fields = f"Status: error\tError Type: {error_type}\t"
        succeeded = False
    elif outcome.kind == "too_large":
        error_type = "Function.ResponseSizeTooLarge"
        error_message = RESPONSE_TOO_LARGE_MESSAGE
        response = _json({"errorMessage": error_message, "errorType": error_type})
        platform_lines.append(f"[ERROR] {error_type}: {error_message}")
        succeeded = False
    elif outcome.kind == "response":
        response = outcome.body
        error_type = error_message = ""
        succeeded = True
        reusable = True
    else:
        document = outcome.error_document()
        error_type = str(document.get("errorType") or "Runtime.Unknown")
        error_message = str(document.get("errorMessage") or "")
        response = outcome.body if outcome.body else _json(document)
        succeeded = False
        reusable = outcome.kind == "error"
        if outcome.kind == "init_error":
            init_ms = init_duration_ms or 0.0
            init_lines.append(
                f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\t"
                f"Error Type: {error_type}"
            )
            duration_ms = 0.0

    max_memory = environment.sandbox.max_memory_used_mb()
    billed = math.ceil(duration_ms + (init_duration_ms or 0.0))
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed} ms\tMemory Size: {snapshot.memory_size} MB\t"
        f"Max Memory Used: {max_memory} MB\t"
    )
    if init_duration_ms is not None:
        report += f"Init Duration: {init_duration_ms:.2f} ms\t"
    report += status_fields

    lines = _assemble_lines(
        collector,
        delivered_at=api.delivered_at,
        init_lines=init_lines,
        start_line=f"START RequestId: {request_id} Version: {snapshot.version}",
        platform_lines=platform_lines,
        end_lines=[f"END RequestId: {request_id}", report],
    )
    return (
        ExecutionResult(
            succeeded=succeeded,
            response=response,
            error_type=error_type,
            error_message=error_message,
            duration_ms=round(duration_ms, 2),
            billed_duration_ms=billed,
            init_duration_ms=round(init_duration_ms, 2) if init_duration_ms is not None else None,
            max_memory_used_mb=max_memory,
            log_stream_name=environment.log_stream_name,
            log_lines=lines,
            provisioned=environment.provisioned,
        ),
        reusable,
    )


def _assemble_lines(
    collector: _OutputCollector,
    *,
    delivered_at: float | None,
    init_lines: list[str],
    start_line: str,
    platform_lines: list[str],
    end_lines: list[str],
) -> list[LogLine]:
    now = datetime.now(tz=UTC)
    perf_now = time.perf_counter()

    def wall(perf: float) -> datetime:
        return now - timedelta(seconds=perf_now - perf)

    start_time = wall(delivered_at) if delivered_at is not None else now
    boundary = collector.init_line_count
    if boundary is None:
        # A warm environment has no init output; one that never finished init has only that.
        boundary = len(collector.lines) if delivered_at is None else 0
    before, during = collector.lines[:boundary], collector.lines[boundary:]
    result = list(before)
    result.extend(LogLine(start_time, text) for text in init_lines)
    result.append(LogLine(start_time, start_line))
    result.extend(during)
    result.extend(LogLine(now, text) for text in platform_lines)
    result.extend(LogLine(now, text) for text in end_lines)
    return result


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _json(document: dict[str, str]) -> bytes:
    return json.dumps(document).encode()
