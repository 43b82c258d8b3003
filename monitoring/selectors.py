"""Reads of logs and metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import FloatField, Func, Max, Min, Q, Sum, Value
from django.db.models.functions import Floor
from django.http import Http404
from django.utils import timezone

from functions.models import Function
from functions.selectors import function_list_for_user
from invocations.models import Invocation
from monitoring.charts import (
    ACCOUNT_CHARTS,
    ACCOUNT_WIDE_METRICS,
    ALL_FUNCTIONS_METRICS,
    CHART_METRICS,
    BucketStats,
    TimeRange,
    Window,
    chart_payload,
    window_ending_at,
)
from monitoring.models import LogEvent, MetricDatapoint
from monitoring.services import ACCOUNT_WIDE

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType


def log_messages_for_invocation(*, request_id: uuid.UUID | str) -> list[str]:
    """The invocation's log lines in order: init output (cold starts), START, output, END,
    REPORT."""
    return list(
        LogEvent.objects.filter(request_id=request_id)
        .order_by("timestamp", "id")
        .values_list("message", flat=True)
    )


class EpochSeconds(Func):
    """Seconds since the Unix epoch of a datetime column."""

    function = "UNIX_TIMESTAMP"
    output_field = FloatField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> _AsSqlType:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)", **extra_context
        )

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> _AsSqlType:
        # Four percent signs: one pair is eaten by Func's template, the other by the SQLite
        # backend's placeholder conversion.
        return self.as_sql(
            compiler,
            connection,
            template="CAST(strftime('%%%%s', %(expressions)s) AS REAL)",
            **extra_context,
        )


LATEST = "$LATEST"
FUNCTION_NAME = "FunctionName"


def metric_dimension(*, function: Function, qualifier: str = LATEST) -> tuple[str, str]:
    """The function's own metrics, or for a version or alias those carrying its `Resource`
    dimension (`name:qualifier`)."""
    if qualifier == LATEST:
        return FUNCTION_NAME, function.name
    return "Resource", f"{function.name}:{qualifier}"


def _of_dimension(dimension: tuple[str, str], metric_names: Iterable[str]) -> Q:
    dimension_name, dimension_value = dimension
    return Q(
        dimension_name=dimension_name,
        dimension_value=dimension_value,
        metric_name__in=sorted(metric_names),
    )


def metric_buckets_for_function(
    *,
    function: Function,
    window: Window,
    metric_names: Iterable[str] = CHART_METRICS,
    qualifier: str = LATEST,
) -> dict[str, dict[int, BucketStats]]:
    """The function's one-minute datapoints in the window, merged per period (see
    _metric_buckets)."""
    return _metric_buckets(
        owner_id=function.owner_id,
        window=window,
        datapoints=_of_dimension(
            metric_dimension(function=function, qualifier=qualifier), metric_names
        ),
    )


def metric_buckets_for_account(
    *, owner_id: int, window: Window
) -> dict[str, dict[int, BucketStats]]:
    """The Dashboard's datapoints in the window, merged per period in one query: for
    Invocations, Errors, Duration and Throttles, those of every function of the account
    (dimension FunctionName, any value), which add up to the account's; for the concurrency
    metrics, the account-level ones (no dimension), since the functions' peaks need not
    coincide."""
    every_function = Q(dimension_name=FUNCTION_NAME, metric_name__in=sorted(ALL_FUNCTIONS_METRICS))
    return _metric_buckets(
        owner_id=owner_id,
        window=window,
        datapoints=every_function | _of_dimension(ACCOUNT_WIDE, ACCOUNT_WIDE_METRICS),
    )


def _metric_buckets(
    *, owner_id: int, window: Window, datapoints: Q
) -> dict[str, dict[int, BucketStats]]:
    """The owner's one-minute `datapoints` in the window, merged per metric and period in
    SQL: sum of sums, sum of counts, min of minimums, max of maximums. Keys are bucket
    indexes from the window's start; periods without datapoints are absent."""
    period_seconds = window.time_range.period.total_seconds()
    bucket_index = Floor(
        (EpochSeconds("period_start") - Value(window.start.timestamp(), FloatField()))
        / Value(period_seconds, FloatField())
    )
    rows = (
        MetricDatapoint.objects.filter(
            datapoints,
            owner_id=owner_id,
            period_start__gte=window.start,
            period_start__lt=window.end,
        )
        .annotate(bucket=bucket_index)
        .values("metric_name", "bucket")
        .annotate(
            total=Sum("sum"),
            count=Sum("sample_count"),
            lowest=Min("minimum"),
            highest=Max("maximum"),
        )
        .order_by()
    )
    buckets: dict[str, dict[int, BucketStats]] = {}
    for row in rows:
        buckets.setdefault(row["metric_name"], {})[int(row["bucket"])] = BucketStats(
            sum=row["total"],
            sample_count=row["count"],
            minimum=row["lowest"],
            maximum=row["highest"],
        )
    return buckets


def function_metrics_chart_data(
    *,
    function: Function,
    time_range: TimeRange,
    now: datetime | None = None,
    qualifier: str = LATEST,
) -> dict[str, Any]:
    window = window_ending_at(time_range=time_range, now=now or timezone.now())
    buckets = metric_buckets_for_function(function=function, window=window, qualifier=qualifier)
    return chart_payload(window=window, buckets=buckets)


def account_metrics_chart_data(
    *, owner_id: int, time_range: TimeRange, now: datetime | None = None
) -> dict[str, Any]:
    """The Dashboard's account-level charts: all the account's functions together."""
    window = window_ending_at(time_range=time_range, now=now or timezone.now())
    buckets = metric_buckets_for_account(owner_id=owner_id, window=window)
    return chart_payload(window=window, buckets=buckets, charts=ACCOUNT_CHARTS)


RECENT_INVOCATION_LIMIT = 50
RECENT_INVOCATION_FIELDS = (
    "request_id",
    "created_at",
    "log_stream_name",
    "status",
    "error_type",
    "duration_ms",
    "init_duration_ms",
    "billed_duration_ms",
    "memory_size",
    "max_memory_used_mb",
    "executed_version",
)


def invocation_recent_for_function(
    *,
    function: Function,
    since: datetime,
    limit: int = RECENT_INVOCATION_LIMIT,
    qualifier: str = LATEST,
) -> list[Invocation]:
    """Newest first, served by the (function, -created_at) index. $LATEST lists every
    invocation of the function; a version or alias only those invoked by that qualifier."""
    invocations = Invocation.objects.filter(function=function, created_at__gte=since)
    if qualifier != LATEST:
        invocations = invocations.filter(qualifier=qualifier)
    return list(invocations.order_by("-created_at").only(*RECENT_INVOCATION_FIELDS)[:limit])


def invocation_get_for_user(
    *, user: AbstractBaseUser | AnonymousUser, request_id: uuid.UUID
) -> Invocation:
    visible_functions = function_list_for_user(user=user).values("pk")
    try:
        return (
            Invocation.objects.filter(function__in=visible_functions)
            .only("request_id", "function_id", "log_stream_name", "status", "created_at")
            .get(request_id=request_id)
        )
    except Invocation.DoesNotExist as exc:
        raise Http404("Invocation not found") from exc
