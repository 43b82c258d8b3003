from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.services import function_create
from monitoring.charts import (
    TIME_RANGES,
    InvalidTimeRange,
    time_range_for_key,
    window_ending_at,
)
from monitoring.models import MetricDatapoint
from monitoring.selectors import function_metrics_chart_data, metric_buckets_for_function

pytestmark = pytest.mark.django_db

# 3h range, 5-minute periods: the window is 07:10 to 10:10 and its last bucket starts at 10:05.
NOW = datetime(2025, 3, 4, 10, 7, 30, tzinfo=UTC)
THREE_HOURS = TIME_RANGES["3h"]


def at(hour: int, minute: int) -> datetime:
    return datetime(2025, 3, 4, hour, minute, tzinfo=UTC)


@pytest.fixture
def owner(user):
    return user


@pytest.fixture
def function(owner):
    return function_create(owner=owner, name="orders", role=None)


def datapoint(owner, metric, when, *, total, count=1.0, low=None, high=None, name="orders"):
    return MetricDatapoint.objects.create(
        owner=owner,
        metric_name=metric,
        dimension_name="FunctionName",
        dimension_value=name,
        period_start=when,
        sum=total,
        sample_count=count,
        minimum=total if low is None else low,
        maximum=total if high is None else high,
    )


def series(payload, slug, label):
    chart = next(chart for chart in payload["charts"] if chart["slug"] == slug)
    return next(dataset["data"] for dataset in chart["datasets"] if dataset["label"] == label)


def chart(payload, slug):
    return next(chart for chart in payload["charts"] if chart["slug"] == slug)


def test_window_is_aligned_to_periods_and_ends_after_the_current_one():
    window = window_ending_at(time_range=THREE_HOURS, now=NOW)

    assert window.start == at(7, 10)
    assert window.end == at(10, 10)
    assert len(window.bucket_starts) == 36
    assert window.bucket_starts[-1] == at(10, 5)


@pytest.mark.parametrize("key", list(TIME_RANGES))
def test_every_range_stays_under_300_points(key):
    time_range = TIME_RANGES[key]

    assert 0 < time_range.bucket_count <= 300
    assert time_range.span % time_range.period == timedelta(0)


def test_unknown_range_is_rejected_with_the_choices():
    with pytest.raises(InvalidTimeRange) as excinfo:
        time_range_for_key("5h")

    assert excinfo.value.message == "Invalid range '5h'. Choose one of: 1h, 3h, 12h, 1d, 3d, 1w."
    assert time_range_for_key(None).key == "3h"


def test_sums_add_up_per_period(owner, function):
    datapoint(owner, "Invocations", at(10, 1), total=2)
    datapoint(owner, "Invocations", at(10, 3), total=3)
    datapoint(owner, "Invocations", at(10, 7), total=4)

    payload = function_metrics_chart_data(function=function, time_range=THREE_HOURS, now=NOW)

    invocations = series(payload, "invocations", "Invocations")
    assert len(invocations) == 36
    assert invocations[34] == 5
    assert invocations[35] == 4
    assert payload["labels"][34] == "10:00"
    assert payload["titles"][34] == "2025-03-04 10:00 UTC"
    assert payload["period_seconds"] == 300


def test_duration_merges_minimum_maximum_and_weighs_the_average(owner, function):
    datapoint(owner, "Duration", at(10, 0), total=30.0, count=3, low=5.0, high=20.0)
    datapoint(owner, "Duration", at(10, 4), total=10.0, count=1, low=10.0, high=10.0)

    payload = function_metrics_chart_data(function=function, time_range=THREE_HOURS, now=NOW)

    assert series(payload, "duration", "Average")[34] == 10.0
    assert series(payload, "duration", "Minimum")[34] == 5.0
    assert series(payload, "duration", "Maximum")[34] == 20.0


def test_success_rate_comes_from_errors_over_invocations(owner, function):
    datapoint(owner, "Invocations", at(9, 55), total=3)
    datapoint(owner, "Invocations", at(9, 56), total=1)
    datapoint(owner, "Errors", at(9, 55), total=1)
    datapoint(owner, "Errors", at(9, 56), total=0)
    datapoint(owner, "Invocations", at(10, 5), total=2)

    payload = function_metrics_chart_data(function=function, time_range=THREE_HOURS, now=NOW)

    errors = series(payload, "errors", "Errors")
    success_rate = series(payload, "errors", "Success rate (%)")
    assert errors[33] == 1
    assert success_rate[33] == 75.0
    # Invocations without an Errors row had no errors.
    assert success_rate[35] == 100.0
    assert errors[35] is None


def test_empty_periods_are_null_and_charts_without_datapoints_say_so(owner, function):
    datapoint(owner, "Invocations", at(10, 1), total=1)

    payload = function_metrics_chart_data(function=function, time_range=THREE_HOURS, now=NOW)

    invocations = series(payload, "invocations", "Invocations")
    assert invocations[:34] == [None] * 34
    assert invocations[35] is None
    assert series(payload, "errors", "Success rate (%)")[0] is None
    assert chart(payload, "invocations")["has_data"] is True
    for slug in ("throttles", "async-delivery-failures", "iterator-age", "duration"):
        assert chart(payload, slug)["has_data"] is False


def test_range_start_is_inclusive_and_earlier_or_later_minutes_are_left_out(owner, function):
    datapoint(owner, "Invocations", at(7, 9), total=100)
    datapoint(owner, "Invocations", at(7, 10), total=1)
    datapoint(owner, "Invocations", at(10, 9), total=2)
    datapoint(owner, "Invocations", at(10, 10), total=100)

    window = window_ending_at(time_range=THREE_HOURS, now=NOW)
    buckets = metric_buckets_for_function(function=function, window=window)

    assert {index: stats.sum for index, stats in buckets["Invocations"].items()} == {0: 1, 35: 2}


def test_one_minute_periods_for_the_last_hour(owner, function):
    datapoint(owner, "ConcurrentExecutions", at(10, 7), total=0, low=1, high=3)
    datapoint(owner, "ConcurrentExecutions", at(9, 8), total=0, low=1, high=2)
    datapoint(owner, "ConcurrentExecutions", at(9, 7), total=0, low=1, high=9)

    payload = function_metrics_chart_data(function=function, time_range=TIME_RANGES["1h"], now=NOW)

    concurrency = series(payload, "concurrent-executions", "Concurrent executions")
    assert len(concurrency) == 60
    assert concurrency[0] == 2
    assert concurrency[59] == 3
    assert concurrency.count(None) == 58


def test_other_owners_functions_and_dimensions_are_excluded(owner, function, other_user):
    stranger = other_user
    datapoint(owner, "Invocations", at(10, 1), total=1)
    datapoint(stranger, "Invocations", at(10, 1), total=50)
    datapoint(owner, "Invocations", at(10, 1), total=70, name="orders-v2")
    MetricDatapoint.objects.create(
        owner=owner,
        metric_name="Invocations",
        dimension_name="Resource",
        dimension_value="orders",
        period_start=at(10, 1),
        sum=90,
        sample_count=90,
        minimum=1,
        maximum=1,
    )

    payload = function_metrics_chart_data(function=function, time_range=THREE_HOURS, now=NOW)

    assert series(payload, "invocations", "Invocations")[34] == 1


def test_multi_day_ranges_label_the_date(owner, function):
    payload = function_metrics_chart_data(function=function, time_range=TIME_RANGES["1w"], now=NOW)

    assert len(payload["labels"]) == 168
    assert payload["labels"][-1] == "03/04 10:00"
    assert payload["period_label"] == "1 hour"
