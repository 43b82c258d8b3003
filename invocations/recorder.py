"""Writes what an invocation did: its record, log events and metric datapoints.

On Postgres all of it is one statement (data-modifying CTEs), so finishing an invocation
costs the worker one round trip; other databases take the ORM path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from invocations.executor import ExecutionResult
from invocations.function_snapshot import FunctionSnapshot
from invocations.liveness import current_worker_id
from invocations.models import Invocation, InvocationStatus
from lib.db import execute_prepared
from lib.outage import retry_through_database_outage
from monitoring.models import LogEvent, LogStream, MetricDatapoint
from monitoring.services import (
    ACCOUNT_WIDE,
    MetricSample,
    log_events_append,
    log_stream_id,
    metric_samples_record,
)


@dataclass(frozen=True)
class FinishedInvocation:
    request_id: str
    qualifier: str
    accepted_at: datetime
    finished_at: datetime
    concurrency: int
    # Provisioned concurrency of the version that ran: None when it has none; else whether
    # a provisioned environment served the invocation, and how many the worker keeps.
    provisioned: bool | None = None
    provisioned_allocated: int = 0
    # In flight at admission, this one included: all of the account's functions, and the
    # account's unreserved pool (None for a function with reserved concurrency). None when
    # not known (a record republished from the database): no account-level sample then.
    account_concurrency: int | None = None
    unreserved_concurrency: int | None = None
    # Datapoints of an asynchronous event's attempt (AsyncEventAge, AsyncEventsReceived...).
    extra_samples: tuple[MetricSample, ...] = ()


def _status(result: ExecutionResult) -> str:
    return InvocationStatus.SUCCEEDED if result.succeeded else InvocationStatus.FAILED


def _dimensions(snapshot: FunctionSnapshot, qualifier: str) -> list[tuple[str, str]]:
    dimensions = [("FunctionName", snapshot.name)]
    if qualifier != "$LATEST":
        dimensions.append(("Resource", f"{snapshot.name}:{qualifier}"))
    if snapshot.version != "$LATEST":
        # Each datapoint has one dimension, so the value names the function too: a bare
        # "1" would add up every function's version 1.
        dimensions.append(("ExecutedVersion", f"{snapshot.name}:{snapshot.version}"))
    return dimensions


def metric_dimensions(snapshot: FunctionSnapshot, qualifier: str) -> list[tuple[str, str]]:
    """The dimensions an invocation's datapoints carry."""
    return _dimensions(snapshot, qualifier)


THROTTLED_ERROR_TYPE = "TooManyRequestsException"


def _samples(
    result: ExecutionResult, concurrency: int, finished: FinishedInvocation | None = None
) -> list[MetricSample]:
    if result.error_type == THROTTLED_ERROR_TYPE:
        # Lambda counts a throttled request only as a throttle: nothing was invoked.
        return [MetricSample("Throttles", 1), *(finished.extra_samples if finished else ())]
    samples = [
        MetricSample("Invocations", 1),
        MetricSample("Errors", 0 if result.succeeded else 1),
        MetricSample("Duration", result.duration_ms),
        MetricSample("ConcurrentExecutions", concurrency),
    ]
    if finished is not None:
        samples += finished.extra_samples
    if finished is not None and finished.provisioned is not None:
        samples += provisioned_samples(finished)
    return samples


def _account_samples(result: ExecutionResult, finished: FinishedInvocation) -> list[MetricSample]:
    """The invocation's samples of the account-level metrics (no dimension)."""
    if result.error_type == THROTTLED_ERROR_TYPE:
        return []
    samples = []
    if finished.account_concurrency is not None:
        samples.append(MetricSample("ConcurrentExecutions", finished.account_concurrency))
    if finished.unreserved_concurrency is not None:
        samples.append(
            MetricSample("UnreservedConcurrentExecutions", finished.unreserved_concurrency)
        )
    return samples


def _sample_groups(
    snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> list[tuple[tuple[str, str], list[MetricSample]]]:
    """Each dimension an invocation writes datapoints for, with its samples."""
    samples = _samples(result, finished.concurrency, finished)
    groups = [(dimension, samples) for dimension in _dimensions(snapshot, finished.qualifier)]
    account = _account_samples(result, finished)
    if account:
        groups.append((ACCOUNT_WIDE, account))
    return groups


def provisioned_samples(finished: FinishedInvocation) -> list[MetricSample]:
    """An invocation of a version with provisioned concurrency: served by a provisioned
    environment, or spilled over to an on-demand one."""
    if not finished.provisioned:
        return [
            MetricSample("ProvisionedConcurrencyInvocations", 0),
            MetricSample("ProvisionedConcurrencySpilloverInvocations", 1),
        ]
    allocated = max(1, finished.provisioned_allocated)
    # Busy provisioned environments: the invocations in flight, at most the provisioned ones.
    busy = min(finished.concurrency, allocated)
    return [
        MetricSample("ProvisionedConcurrencyInvocations", 1),
        MetricSample("ProvisionedConcurrencySpilloverInvocations", 0),
        MetricSample("ProvisionedConcurrentExecutions", busy),
        MetricSample("ProvisionedConcurrencyUtilization", busy / allocated),
    ]


def record_throttle(*, snapshot: FunctionSnapshot, qualifier: str, at: datetime) -> None:
    """A request refused for lack of concurrency: a Throttles datapoint, nothing else."""
    metric_samples_record(
        owner_id=snapshot.owner_id,
        dimensions=_dimensions(snapshot, qualifier),
        at=at,
        samples=[MetricSample("Throttles", 1)],
    )


# How long a worker keeps trying to record a finished invocation while the database is
# unreachable (a restart), before the record is left to the sweeper.
RECORD_RETRY_SECONDS = 60.0


def record_invocation(
    *, snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> None:
    """Finish the record (only while it still runs on this worker: one taken for dead and
    handed back keeps what the sweeper or the next attempt wrote), and write the log events
    and metric datapoints of the run."""
    if connection.vendor == "postgresql":
        # One statement, so a retry after a lost connection cannot write half of it twice.
        retry_through_database_outage(
            lambda: _record_in_one_statement(snapshot, result, finished),
            for_seconds=RECORD_RETRY_SECONDS,
        )
    else:
        _record_with_orm(snapshot, result, finished)


def _record_with_orm(
    snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> None:
    with transaction.atomic():
        updated = Invocation.objects.filter(
            pk=finished.request_id, status=InvocationStatus.RUNNING, worker=current_worker_id()
        ).update(**record_fields(snapshot, result, finished))
        if not updated:
            # As on Postgres: the logs and datapoints go with the record's finish.
            return
        if result.log_stream_name:
            log_events_append(
                owner_id=snapshot.owner_id,
                group_name=snapshot.log_group_name,
                stream_name=result.log_stream_name,
                request_id=finished.request_id,
                lines=[(line.timestamp, line.message) for line in result.log_lines],
            )
        for dimension, samples in _sample_groups(snapshot, result, finished):
            metric_samples_record(
                owner_id=snapshot.owner_id,
                dimensions=[dimension],
                at=finished.accepted_at,
                samples=samples,
            )


def record_fields(
    snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> dict[str, object]:
    return {
        "status": _status(result),
        "response": result.response.decode("utf-8", "replace"),
        "error_type": result.error_type,
        "error_message": result.error_message,
        "duration_ms": result.duration_ms,
        "billed_duration_ms": result.billed_duration_ms,
        "init_duration_ms": result.init_duration_ms,
        "max_memory_used_mb": result.max_memory_used_mb,
        "log_stream_name": result.log_stream_name,
        "code_sha256": snapshot.code_sha256,
        "memory_size": snapshot.memory_size,
        "finished_at": finished.finished_at,
    }


def _record_in_one_statement(
    snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> None:
    quote = connection.ops.quote_name
    fields = record_fields(snapshot, result, finished)
    params: dict[str, Any] = {f"f_{name}": value for name, value in fields.items()}
    params["request_id"] = finished.request_id
    params["running"] = InvocationStatus.RUNNING.value
    params["worker"] = current_worker_id()
    assignments = ", ".join(f"{quote(name)} = %(f_{name})s" for name in fields)
    parts = [
        f"finished AS (UPDATE {quote(Invocation._meta.db_table)} SET {assignments} "
        f"WHERE {quote('request_id')} = %(request_id)s AND {quote('status')} = %(running)s "
        f"AND {quote('worker')} = %(worker)s RETURNING 1)"
    ]
    # The logs and datapoints go with the record's finish: none for a record no longer
    # running on this worker (handed back, or finished by an earlier try of this statement
    # whose commit landed unseen), so that a retry writes nothing twice.
    if result.log_stream_name and result.log_lines:
        params["stream_id"] = log_stream_id(
            owner_id=snapshot.owner_id,
            group_name=snapshot.log_group_name,
            stream_name=result.log_stream_name,
        )
        params["timestamps"] = [line.timestamp for line in result.log_lines]
        params["messages"] = [line.message for line in result.log_lines]
        params["last_event_at"] = result.log_lines[-1].timestamp
        events = quote(LogEvent._meta.db_table)
        streams = quote(LogStream._meta.db_table)
        parts.append(
            f"events AS (INSERT INTO {events} (stream_id, timestamp, message, request_id, "
            "ingested_at) SELECT %(stream_id)s, line.t, line.m, %(request_id)s, %(f_finished_at)s "
            "FROM unnest(%(timestamps)s::timestamptz[], %(messages)s::text[]) "
            "WITH ORDINALITY AS line(t, m, n) WHERE EXISTS (SELECT 1 FROM finished) "
            "ORDER BY line.n)"
        )
        parts.append(
            f"stream AS (UPDATE {streams} SET last_event_at = %(last_event_at)s "
            "WHERE id = %(stream_id)s AND EXISTS (SELECT 1 FROM finished))"
        )
    metrics_sql, metric_params = _metrics_upsert(snapshot, result, finished)
    params.update(metric_params)
    parts.append(f"metrics AS ({metrics_sql})")
    execute_prepared(f"WITH {', '.join(parts)} SELECT 1", params)


def _metrics_upsert(
    snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> tuple[str, dict[str, Any]]:
    table = connection.ops.quote_name(MetricDatapoint._meta.db_table)
    period_start = finished.accepted_at.replace(second=0, microsecond=0)
    params: dict[str, Any] = {"m_owner": snapshot.owner_id, "m_period": period_start}
    rows = []
    for d, ((dimension_name, dimension_value), samples) in enumerate(
        _sample_groups(snapshot, result, finished)
    ):
        params[f"m_dn{d}"] = dimension_name
        params[f"m_dv{d}"] = dimension_value
        for s, sample in enumerate(samples):
            params[f"m_n{d}_{s}"] = sample.metric_name
            params[f"m_v{d}_{s}"] = sample.value
            value = f"%(m_v{d}_{s})s"
            rows.append(
                f"(%(m_owner)s, %(m_n{d}_{s})s, %(m_dn{d})s, %(m_dv{d})s, %(m_period)s, 1, "
                f"{value}, {value}, {value})"
            )
    sql = (
        f"INSERT INTO {table} (owner_id, metric_name, dimension_name, dimension_value, "
        "period_start, sample_count, sum, minimum, maximum) "
        f"SELECT * FROM (VALUES {', '.join(rows)}) AS sample "
        "WHERE EXISTS (SELECT 1 FROM finished) "
        "ON CONFLICT (owner_id, metric_name, dimension_name, dimension_value, period_start) "
        f"DO UPDATE SET sample_count = {table}.sample_count + 1, "
        f"sum = {table}.sum + excluded.sum, "
        f"minimum = LEAST({table}.minimum, excluded.minimum), "
        f"maximum = GREATEST({table}.maximum, excluded.maximum)"
    )
    return sql, params
