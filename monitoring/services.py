"""Writes of logs and metrics: what the worker records when an invocation ends."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from monitoring.models import LogEvent, LogGroup, LogStream, MetricDatapoint


@dataclass(frozen=True)
class MetricSample:
    metric_name: str
    value: float


# Lambda publishes its account-level metrics (ConcurrentExecutions and
# UnreservedConcurrentExecutions of the whole account) with no dimension: their datapoints
# carry an empty dimension name and value.
ACCOUNT_WIDE: tuple[str, str] = ("", "")


# Streams live as long as their execution environment, so each worker looks one up once.
_stream_ids: dict[tuple[int, str, str], int] = {}
_stream_ids_lock = threading.Lock()
_STREAM_CACHE_LIMIT = 10_000


def log_stream_id(*, owner_id: int, group_name: str, stream_name: str) -> int:
    """The id of the stream (created with its group on first use)."""
    key = (owner_id, group_name, stream_name)
    with _stream_ids_lock:
        cached = _stream_ids.get(key)
    if cached is not None:
        return cached
    group, _ = LogGroup.objects.get_or_create(owner_id=owner_id, name=group_name)
    stream, _ = LogStream.objects.get_or_create(group=group, name=stream_name)
    with _stream_ids_lock:
        if len(_stream_ids) >= _STREAM_CACHE_LIMIT:
            _stream_ids.clear()
        _stream_ids[key] = stream.pk
    return stream.pk


def log_events_append(
    *,
    owner_id: int,
    group_name: str,
    stream_name: str,
    request_id: str,
    lines: Sequence[tuple[datetime, str]],
) -> None:
    if not lines:
        return
    stream_id = log_stream_id(owner_id=owner_id, group_name=group_name, stream_name=stream_name)
    LogEvent.objects.bulk_create(
        [
            LogEvent(
                stream_id=stream_id, timestamp=timestamp, message=message, request_id=request_id
            )
            for timestamp, message in lines
        ]
    )
    LogStream.objects.filter(pk=stream_id).update(last_event_at=lines[-1][0])


_UPSERT_SQL = """
INSERT INTO {table} (owner_id, metric_name, dimension_name, dimension_value, period_start,
                     sample_count, sum, minimum, maximum)
VALUES {values}
ON CONFLICT (owner_id, metric_name, dimension_name, dimension_value, period_start)
DO UPDATE SET sample_count = {table}.sample_count + 1,
              sum = {table}.sum + excluded.sum,
              minimum = CASE WHEN excluded.minimum < {table}.minimum
                             THEN excluded.minimum ELSE {table}.minimum END,
              maximum = CASE WHEN excluded.maximum > {table}.maximum
                             THEN excluded.maximum ELSE {table}.maximum END
"""


def metric_samples_record(
    *,
    owner_id: int,
    dimensions: Sequence[tuple[str, str]],
    at: datetime,
    samples: Sequence[MetricSample],
) -> None:
    """Fold samples into their one-minute datapoints, in one statement."""
    period_start = at.replace(second=0, microsecond=0)
    rows = [
        (dimension_name, dimension_value, sample)
        for dimension_name, dimension_value in dimensions
        for sample in samples
    ]
    if not rows:
        return
    sql = _UPSERT_SQL.format(
        table=connection.ops.quote_name(MetricDatapoint._meta.db_table),
        values=", ".join(["(%s, %s, %s, %s, %s, 1, %s, %s, %s)"] * len(rows)),
    )
    params: list[str | int | float | datetime] = []
    for dimension_name, dimension_value, sample in rows:
        params += [owner_id, sample.metric_name, dimension_name, dimension_value, period_start]
        params += [sample.value] * 3
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
