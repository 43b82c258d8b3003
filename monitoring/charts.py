"""Time ranges, period buckets and the chart definitions of the Monitor tab and of the
Dashboard's account-level metrics.

Nothing here touches the database: the selector hands in per-bucket aggregates of
one-minute datapoints and this module turns them into CloudWatch-style series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal


class InvalidTimeRange(ValueError):
    def __init__(self, key: str) -> None:
        choices = ", ".join(TIME_RANGES)
        self.message = f"Invalid range {key!r}. Choose one of: {choices}."
        super().__init__(self.message)


@dataclass(frozen=True)
class TimeRange:
    key: str
    span: timedelta
    period: timedelta
    period_label: str

    @property
    def bucket_count(self) -> int:
        return self.span // self.period

    @property
    def spans_days(self) -> bool:
        return self.span >= timedelta(days=1)


# Periods keep every chart at or under 300 points, the way CloudWatch picks them.
TIME_RANGES: dict[str, TimeRange] = {
    time_range.key: time_range
    for time_range in (
        TimeRange("1h", timedelta(hours=1), timedelta(minutes=1), "1 minute"),
        TimeRange("3h", timedelta(hours=3), timedelta(minutes=5), "5 minutes"),
        TimeRange("12h", timedelta(hours=12), timedelta(minutes=5), "5 minutes"),
        TimeRange("1d", timedelta(days=1), timedelta(minutes=5), "5 minutes"),
        TimeRange("3d", timedelta(days=3), timedelta(minutes=15), "15 minutes"),
        TimeRange("1w", timedelta(weeks=1), timedelta(hours=1), "1 hour"),
    )
}
DEFAULT_TIME_RANGE = "3h"


def time_range_for_key(key: str | None) -> TimeRange:
    if key is None or key == "":
        return TIME_RANGES[DEFAULT_TIME_RANGE]
    try:
        return TIME_RANGES[key]
    except KeyError:
        raise InvalidTimeRange(key) from None


@dataclass(frozen=True)
class Window:
    """`bucket_count` periods aligned to the UTC epoch; the last one holds `now`.

    `start` is inclusive and `end` exclusive.
    """

    time_range: TimeRange
    start: datetime
    end: datetime

    @property
    def bucket_starts(self) -> list[datetime]:
        period = self.time_range.period
        return [self.start + index * period for index in range(self.time_range.bucket_count)]


def window_ending_at(*, time_range: TimeRange, now: datetime) -> Window:
    period_seconds = int(time_range.period.total_seconds())
    epoch_seconds = int(now.timestamp())
    last_bucket = datetime.fromtimestamp(epoch_seconds - epoch_seconds % period_seconds, tz=UTC)
    end = last_bucket + time_range.period
    return Window(time_range=time_range, start=end - time_range.span, end=end)


@dataclass(frozen=True)
class BucketStats:
    """One metric's one-minute datapoints merged over a period."""

    sum: float
    sample_count: float
    minimum: float
    maximum: float

    @property
    def average(self) -> float | None:
        return self.sum / self.sample_count if self.sample_count else None


# metric name -> bucket index -> stats
MetricBuckets = Mapping[str, Mapping[int, BucketStats]]

Statistic = Literal["Sum", "Average", "Minimum", "Maximum", "SuccessRate"]


@dataclass(frozen=True)
class SeriesSpec:
    label: str
    metric: str
    statistic: Statistic
    color: str
    kind: Literal["line", "bar"] = "line"
    axis: Literal["count", "percent"] = "count"


@dataclass(frozen=True)
class ChartSpec:
    slug: str
    title: str
    description: str
    unit: str
    series: tuple[SeriesSpec, ...]


# Colours follow CloudWatch's default palette so the charts read like the AWS console.
BLUE, ORANGE, GREEN, RED = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"

INVOCATIONS_CHART = ChartSpec(
    "invocations",
    "Invocations",
    "Sum",
    "Count",
    (SeriesSpec("Invocations", "Invocations", "Sum", BLUE),),
)
DURATION_CHART = ChartSpec(
    "duration",
    "Duration",
    "Average, Minimum, Maximum",
    "Milliseconds",
    (
        SeriesSpec("Average", "Duration", "Average", BLUE),
        SeriesSpec("Minimum", "Duration", "Minimum", ORANGE),
        SeriesSpec("Maximum", "Duration", "Maximum", GREEN),
    ),
)
ERRORS_CHART = ChartSpec(
    "errors",
    "Error count and success rate (%)",
    "Errors Sum, success rate",
    "Count",
    (
        SeriesSpec("Errors", "Errors", "Sum", RED, kind="bar"),
        SeriesSpec("Success rate (%)", "Invocations", "SuccessRate", GREEN, axis="percent"),
    ),
)
THROTTLES_CHART = ChartSpec(
    "throttles",
    "Throttles",
    "Sum",
    "Count",
    (SeriesSpec("Throttles", "Throttles", "Sum", BLUE),),
)

CHARTS: tuple[ChartSpec, ...] = (
    INVOCATIONS_CHART,
    DURATION_CHART,
    ERRORS_CHART,
    THROTTLES_CHART,
    ChartSpec(
        "async-delivery-failures",
        "Async delivery failures",
        "DestinationDeliveryFailures and DeadLetterErrors Sum",
        "Count",
        (
            SeriesSpec("Async delivery failures", "DestinationDeliveryFailures", "Sum", BLUE),
            SeriesSpec("Dead-letter errors", "DeadLetterErrors", "Sum", ORANGE),
        ),
    ),
    ChartSpec(
        "async-events",
        "Async events received and dropped",
        "AsyncEventsReceived and AsyncEventsDropped Sum",
        "Count",
        (
            SeriesSpec("Received", "AsyncEventsReceived", "Sum", BLUE),
            SeriesSpec("Dropped", "AsyncEventsDropped", "Sum", RED),
        ),
    ),
    ChartSpec(
        "async-event-age",
        "Async event age",
        "AsyncEventAge Average, Maximum",
        "Milliseconds",
        (
            SeriesSpec("Average", "AsyncEventAge", "Average", BLUE),
            SeriesSpec("Maximum", "AsyncEventAge", "Maximum", ORANGE),
        ),
    ),
    ChartSpec(
        "iterator-age",
        "IteratorAge",
        "Maximum",
        "Milliseconds",
        (SeriesSpec("IteratorAge", "IteratorAge", "Maximum", BLUE),),
    ),
    ChartSpec(
        "concurrent-executions",
        "Concurrent executions",
        "Maximum",
        "Count",
        (SeriesSpec("Concurrent executions", "ConcurrentExecutions", "Maximum", BLUE),),
    ),
)


def chart_metrics(charts: Sequence[ChartSpec]) -> frozenset[str]:
    return frozenset(series.metric for chart in charts for series in chart.series)


def account_chart(chart: ChartSpec) -> ChartSpec:
    """A Monitor tab chart drawn on the Dashboard, from the datapoints of all functions."""
    return replace(chart, slug=f"account-{chart.slug}")


# The Dashboard's account-level charts, as Lambda's console lays them out. These merge the
# datapoints of every function of the account (dimension FunctionName) at read time...
ALL_FUNCTIONS_CHARTS: tuple[ChartSpec, ...] = tuple(
    account_chart(chart)
    for chart in (ERRORS_CHART, INVOCATIONS_CHART, DURATION_CHART, THROTTLES_CHART)
)
# ...and these read the datapoints recorded with no dimension: of all the account's
# functions (ConcurrentExecutions) or of those without reserved concurrency (Unreserved...).
ACCOUNT_WIDE_CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec(
        "account-concurrent-executions",
        "Concurrent executions",
        "Maximum",
        "Count",
        (
            SeriesSpec("Concurrent executions", "ConcurrentExecutions", "Maximum", BLUE),
            SeriesSpec(
                "Unreserved concurrent executions",
                "UnreservedConcurrentExecutions",
                "Maximum",
                ORANGE,
            ),
        ),
    ),
)
ACCOUNT_CHARTS: tuple[ChartSpec, ...] = ALL_FUNCTIONS_CHARTS + ACCOUNT_WIDE_CHARTS

CHART_METRICS: frozenset[str] = chart_metrics(CHARTS)
# Disjoint, so that one query can fetch both kinds and group them by metric name alone.
ALL_FUNCTIONS_METRICS: frozenset[str] = chart_metrics(ALL_FUNCTIONS_CHARTS)
ACCOUNT_WIDE_METRICS: frozenset[str] = chart_metrics(ACCOUNT_WIDE_CHARTS)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def statistic_value(
    *, buckets: MetricBuckets, metric: str, statistic: Statistic, index: int
) -> float | None:
    stats = buckets.get(metric, {}).get(index)
    if stats is None:
        return None
    if statistic == "Sum":
        return stats.sum
    if statistic == "Average":
        return _round(stats.average)
    if statistic == "Minimum":
        return stats.minimum
    if statistic == "Maximum":
        return stats.maximum
    invocations = stats.sum
    if invocations <= 0:
        return None
    errors_stats = buckets.get("Errors", {}).get(index)
    errors = errors_stats.sum if errors_stats else 0.0
    return _round(100 * (1 - errors / invocations))


def series_values(
    *, buckets: MetricBuckets, series: SeriesSpec, bucket_count: int
) -> list[float | None]:
    return [
        statistic_value(
            buckets=buckets, metric=series.metric, statistic=series.statistic, index=index
        )
        for index in range(bucket_count)
    ]


def bucket_label(*, bucket_start: datetime, spans_days: bool) -> str:
    return bucket_start.strftime("%m/%d %H:%M" if spans_days else "%H:%M")


def chart_payload(
    *, window: Window, buckets: MetricBuckets, charts: Sequence[ChartSpec] = CHARTS
) -> dict[str, Any]:
    """Everything the charts draw: labels, and each chart's datasets with null where a
    period had no datapoints."""
    time_range = window.time_range
    bucket_starts = window.bucket_starts
    drawn = []
    for chart in charts:
        datasets = [
            {
                "label": series.label,
                "statistic": series.statistic,
                "kind": series.kind,
                "axis": series.axis,
                "color": series.color,
                "data": series_values(
                    buckets=buckets, series=series, bucket_count=time_range.bucket_count
                ),
            }
            for series in chart.series
        ]
        has_data = any(value is not None for dataset in datasets for value in dataset["data"])
        drawn.append(
            {
                "slug": chart.slug,
                "title": chart.title,
                "description": chart.description,
                "unit": chart.unit,
                "has_data": has_data,
                "datasets": datasets,
            }
        )
    return {
        "range": time_range.key,
        "period_seconds": int(time_range.period.total_seconds()),
        "period_label": time_range.period_label,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "labels": [
            bucket_label(bucket_start=start, spans_days=time_range.spans_days)
            for start in bucket_starts
        ],
        "titles": [f"{start:%Y-%m-%d %H:%M} UTC" for start in bucket_starts],
        "charts": drawn,
    }
