"""The Dashboard: the account's resources and its account-level charts, all of the signed-in
account only. Invocations, errors, duration and throttles merge every function's datapoints
per period; concurrent executions come from the datapoints with no dimension."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.tests.factories import make_function, make_user, signed_in_client
from functions.models import Function
from monitoring.charts import (
    ACCOUNT_WIDE_METRICS,
    ALL_FUNCTIONS_METRICS,
    TIME_RANGES,
    window_ending_at,
)
from monitoring.models import MetricDatapoint
from monitoring.selectors import account_metrics_chart_data, metric_buckets_for_account
from monitoring.services import MetricSample, metric_samples_record

pytestmark = pytest.mark.django_db

# 3h range, 5-minute periods: the window is 07:10 to 10:10 and its last bucket starts at 10:05.
NOW = datetime(2025, 3, 4, 10, 7, 30, tzinfo=UTC)
CHART = "account-concurrent-executions"
ACCOUNT_CHART_SLUGS = [
    "account-errors",
    "account-invocations",
    "account-duration",
    "account-throttles",
    CHART,
]


def at(hour: int, minute: int) -> datetime:
    return datetime(2025, 3, 4, hour, minute, tzinfo=UTC)


def datapoint(
    owner: User,
    metric: str,
    when: datetime,
    *,
    high: float,
    dimension: tuple[str, str] = ("", ""),
) -> MetricDatapoint:
    return MetricDatapoint.objects.create(
        owner=owner,
        metric_name=metric,
        dimension_name=dimension[0],
        dimension_value=dimension[1],
        period_start=when,
        sum=high,
        sample_count=1,
        minimum=high,
        maximum=high,
    )


def invoke(owner: User, function: str, when: datetime, *durations: float, failed: int = 0) -> None:
    """Datapoints as the worker records `len(durations)` invocations of `function`, the first
    `failed` of them with a function error: for FunctionName, and again for the alias and the
    version that ran."""
    for index, duration in enumerate(durations):
        metric_samples_record(
            owner_id=owner.pk,
            dimensions=[
                ("FunctionName", function),
                ("Resource", f"{function}:live"),
                ("ExecutedVersion", f"{function}:1"),
            ],
            at=when,
            samples=[
                MetricSample("Invocations", 1),
                MetricSample("Errors", 1 if index < failed else 0),
                MetricSample("Duration", duration),
                MetricSample("ConcurrentExecutions", 1),
            ],
        )


def throttle(owner: User, function: str, when: datetime, times: int = 1) -> None:
    for _ in range(times):
        metric_samples_record(
            owner_id=owner.pk,
            dimensions=[("FunctionName", function), ("Resource", f"{function}:live")],
            at=when,
            samples=[MetricSample("Throttles", 1)],
        )


def series(payload: dict[str, Any], label: str, slug: str = CHART) -> list[float | None]:
    chart = next(chart for chart in payload["charts"] if chart["slug"] == slug)
    return next(dataset["data"] for dataset in chart["datasets"] if dataset["label"] == label)


def present(data: list[float | None]) -> list[tuple[int, float]]:
    return [(index, value) for index, value in enumerate(data) if value is not None]


def values(data: list[float | None]) -> list[float]:
    """The values of the periods with datapoints, for data whose periods depend on the clock."""
    return [value for _, value in present(data)]


def test_account_buckets_take_the_maximum_of_the_datapoints_without_dimension(user):
    other = make_user("bob")
    datapoint(user, "ConcurrentExecutions", datetime(2025, 3, 4, 10, 5, tzinfo=UTC), high=3)
    datapoint(user, "ConcurrentExecutions", datetime(2025, 3, 4, 10, 6, tzinfo=UTC), high=7)
    datapoint(user, "ConcurrentExecutions", datetime(2025, 3, 4, 9, 0, tzinfo=UTC), high=2)
    # Neither a function's own datapoints nor another account's count here.
    datapoint(
        user,
        "ConcurrentExecutions",
        datetime(2025, 3, 4, 10, 5, tzinfo=UTC),
        high=50,
        dimension=("FunctionName", "orders"),
    )
    datapoint(other, "ConcurrentExecutions", datetime(2025, 3, 4, 10, 5, tzinfo=UTC), high=90)
    window = window_ending_at(time_range=TIME_RANGES["3h"], now=NOW)

    buckets = metric_buckets_for_account(owner_id=user.pk, window=window)

    concurrent = buckets["ConcurrentExecutions"]
    assert sorted(concurrent) == [22, 35]
    assert (concurrent[35].maximum, concurrent[35].sample_count) == (7, 2)
    assert concurrent[22].maximum == 2


def test_the_chart_has_both_series(user):
    datapoint(user, "ConcurrentExecutions", datetime(2025, 3, 4, 10, 5, tzinfo=UTC), high=4)
    datapoint(
        user, "UnreservedConcurrentExecutions", datetime(2025, 3, 4, 10, 5, tzinfo=UTC), high=1
    )

    payload = account_metrics_chart_data(owner_id=user.pk, time_range=TIME_RANGES["3h"], now=NOW)

    assert [chart["slug"] for chart in payload["charts"]] == ACCOUNT_CHART_SLUGS
    assert present(series(payload, "Concurrent executions")) == [(35, 4)]
    assert present(series(payload, "Unreserved concurrent executions")) == [(35, 1)]


@pytest.fixture
def two_functions_busy(user):
    """Invocations of two functions around 10:00 (the last two 5-minute periods of the 3h
    window are 34: 10:00-10:05 and 35: 10:05-10:10), and what must not count with them."""
    invoke(user, "orders", at(10, 1), 130, 20, 200, 50, failed=1)
    invoke(user, "orders", at(10, 3), 30, 60)
    throttle(user, "orders", at(10, 3), times=3)
    invoke(user, "images", at(10, 2), 100, 900, 500, failed=2)
    throttle(user, "images", at(10, 4))
    invoke(user, "images", at(10, 6), 5, 10, 10, 10, 15)
    throttle(user, "orders", at(9, 57), times=2)
    # Before the window, and another account's function of the same name.
    invoke(user, "orders", at(7, 9), 4000, failed=1)
    invoke(make_user("bob"), "orders", at(10, 1), 7000, failed=1)


def test_account_invocations_errors_and_throttles_add_up_every_functions_datapoints(
    user, two_functions_busy
):
    payload = account_metrics_chart_data(owner_id=user.pk, time_range=TIME_RANGES["3h"], now=NOW)

    assert present(series(payload, "Invocations", "account-invocations")) == [(34, 9), (35, 5)]
    assert present(series(payload, "Errors", "account-errors")) == [(34, 3), (35, 0)]
    assert present(series(payload, "Throttles", "account-throttles")) == [(33, 2), (34, 4)]


def test_account_success_rate_is_of_all_invocations_of_the_period(user, two_functions_busy):
    payload = account_metrics_chart_data(owner_id=user.pk, time_range=TIME_RANGES["3h"], now=NOW)

    # 3 errors in 9 invocations, then none in 5; a period of throttles alone has no rate.
    assert present(series(payload, "Success rate (%)", "account-errors")) == [
        (34, 66.67),
        (35, 100.0),
    ]


def test_account_duration_merges_every_functions_minimum_maximum_and_average(
    user, two_functions_busy
):
    payload = account_metrics_chart_data(owner_id=user.pk, time_range=TIME_RANGES["3h"], now=NOW)

    assert present(series(payload, "Minimum", "account-duration")) == [(34, 20), (35, 5)]
    assert present(series(payload, "Maximum", "account-duration")) == [(34, 900), (35, 15)]
    # (130 + 20 + 200 + 50 + 30 + 60 + 100 + 900 + 500) / 9 and (5 + 10 + 10 + 10 + 15) / 5
    assert present(series(payload, "Average", "account-duration")) == [(34, 221.11), (35, 10)]


def test_account_concurrency_is_not_the_sum_of_the_functions(user, two_functions_busy):
    datapoint(user, "ConcurrentExecutions", at(10, 2), high=1)

    payload = account_metrics_chart_data(owner_id=user.pk, time_range=TIME_RANGES["3h"], now=NOW)

    assert present(series(payload, "Concurrent executions")) == [(34, 1)]


def test_the_two_kinds_of_account_metrics_do_not_overlap():
    # One query fetches both and groups them by metric name only.
    assert {"Invocations", "Errors", "Duration", "Throttles"} == ALL_FUNCTIONS_METRICS
    assert not ALL_FUNCTIONS_METRICS & ACCOUNT_WIDE_METRICS


def test_a_period_of_a_busy_account_is_read_from_its_own_index_entries(user):
    """Two days of every-minute datapoints of 40 functions: the query must reach the last
    hour's through an index on the period, not read each function's whole history."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {MetricDatapoint._meta.db_table} (owner_id, metric_name, "
            "dimension_name, dimension_value, period_start, sample_count, sum, minimum, maximum) "
            "SELECT %s, metric, 'FunctionName', 'fn-' || function, "
            "%s - make_interval(mins => minute), 1, 1, 1, 1 "
            "FROM generate_series(1, 40) function, generate_series(0, 2 * 1440) minute, "
            "unnest(ARRAY['Invocations', 'Errors', 'Duration']) metric",
            [user.pk, NOW],
        )
        cursor.execute(f"ANALYZE {MetricDatapoint._meta.db_table}")
    window = window_ending_at(time_range=TIME_RANGES["1h"], now=NOW)
    with CaptureQueriesContext(connection) as queries:
        buckets = metric_buckets_for_account(owner_id=user.pk, window=window)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {queries.captured_queries[0]['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert buckets["Invocations"][59].sum == 40
    assert "metric_all_functions_period" in plan
    assert "Seq Scan" not in plan


def test_the_dashboard_shows_the_accounts_resources_and_its_chart(user):
    make_function(user, "shared")
    reserved = make_function(user, "own")
    Function.objects.filter(pk=reserved.pk).update(reserved_concurrency=150)
    make_function(make_user("bob"), "elsewhere")
    datapoint(user, "ConcurrentExecutions", timezone.now() - timedelta(minutes=2), high=6)

    with override_settings(STRATUS_ACCOUNT_CONCURRENCY_LIMIT=400):
        response = signed_in_client(user).get(reverse("monitoring:dashboard"))

    assert response.status_code == 200
    resources = response.context["resources"]
    assert (resources.function_count, resources.concurrency_limit) == (2, 400)
    assert resources.unreserved_concurrency == 250
    content = response.content.decode()
    for label in ("Lambda functions", "Code storage", "Full account concurrency"):
        assert f"<dt>{label}</dt>" in content
    assert "<dd>250</dd>" in content
    assert 'aria-current="page">Dashboard</a>' in content
    assert 'aria-current="page">Functions</a>' not in content
    for slug in ACCOUNT_CHART_SLUGS:
        assert f'data-chart="{slug}"' in content
    assert f'data-metrics-url="{reverse("monitoring:account-metrics")}"' in content
    embedded = response.context["account_metrics"]
    assert values(series(embedded, "Concurrent executions")) == [6]


def test_the_dashboard_takes_its_range_from_the_address(user):
    client = signed_in_client(user)

    chosen = client.get(reverse("monitoring:dashboard"), {"range": "1d"})
    unknown = client.get(reverse("monitoring:dashboard"), {"range": "2h"})

    assert chosen.context["account_metrics"]["range"] == "1d"
    assert re.search(r'value="1d"\s+aria-pressed="true"', chosen.content.decode())
    assert unknown.context["account_metrics"]["range"] == "3h"


def test_account_metrics_json_is_the_signed_in_accounts(user):
    other = make_user("bob")
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
    datapoint(user, "UnreservedConcurrentExecutions", minute, high=3)
    datapoint(other, "UnreservedConcurrentExecutions", minute, high=9)

    response = signed_in_client(user).get(reverse("monitoring:account-metrics"), {"range": "1h"})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    payload = response.json()
    assert payload["range"] == "1h" and len(payload["labels"]) == 60
    assert values(series(payload, "Unreserved concurrent executions")) == [3]


def test_account_metrics_json_totals_the_signed_in_accounts_functions(user):
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
    invoke(user, "orders", minute, 40, 60, failed=1)
    invoke(user, "images", minute, 300)
    throttle(user, "images", minute, times=2)
    invoke(make_user("bob"), "orders", minute, 9000, failed=1)

    response = signed_in_client(user).get(reverse("monitoring:account-metrics"), {"range": "1h"})

    assert response.status_code == 200
    payload = response.json()
    assert [chart["slug"] for chart in payload["charts"]] == ACCOUNT_CHART_SLUGS
    assert values(series(payload, "Invocations", "account-invocations")) == [3]
    assert values(series(payload, "Errors", "account-errors")) == [1]
    assert values(series(payload, "Success rate (%)", "account-errors")) == [66.67]
    assert values(series(payload, "Throttles", "account-throttles")) == [2]
    assert values(series(payload, "Maximum", "account-duration")) == [300]
    assert values(series(payload, "Average", "account-duration")) == [133.33]


def test_account_metrics_refuse_an_unknown_range(user):
    response = signed_in_client(user).get(reverse("monitoring:account-metrics"), {"range": "2h"})

    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid range '2h'. Choose one of: 1h, 3h, 12h, 1d, 3d, 1w."
    }


def test_the_dashboard_needs_a_signed_in_user(client):
    response = client.get(reverse("monitoring:dashboard"))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]
