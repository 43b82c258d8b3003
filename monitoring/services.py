"""Writes of logs and metrics: what the worker records when an invocation ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from monitoring.models import LogEvent, LogGroup, LogStream, MetricDatapoint


@dataclass(frozen=True)
class MetricSample:
    metric_name: str
    value: float


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
    group, _ = LogGroup.objects.get_or_create(owner_id=owner_id, name=group_name)
    stream, _ = LogStream.objects.get_or_create(group=group, name=stream_name)
    LogEvent.objects.bulk_create(
        [
            LogEvent(stream=stream, timestamp=timestamp, message=message, request_id=request_id)
            for timestamp, message in lines
        ]
    )
    LogStream.objects.filter(pk=stream.pk).update(last_event_at=lines[-1][0])


_UPSERT_SQL = """
INSERT INTO {table} (owner_id, metric_name, dimension_name, dimension_value, period_start,
                     sample_count, sum, minimum, maximum)
VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s)
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
    """Fold samples into their one-minute datapoints (one upsert per metric and dimension)."""
    period_start = at.replace(second=0, microsecond=0)
    sql = _UPSERT_SQL.format(table=connection.ops.quote_name(MetricDatapoint._meta.db_table))
    rows = [
        (
            owner_id,
            sample.metric_name,
            dimension_name,
            dimension_value,
            period_start,
            sample.value,
            sample.value,
            sample.value,
        )
        for dimension_name, dimension_value in dimensions
        for sample in samples
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
