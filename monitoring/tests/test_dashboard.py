"""The Dashboard: the account's resources and its account-level concurrency chart, read from
the datapoints with no dimension of the signed-in account only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from console.tests.factories import make_function, make_user, signed_in_client
from functions.models import Function
from monitoring.charts import TIME_RANGES, window_ending_at
from monitoring.models import MetricDatapoint
from monitoring.selectors import account_metrics_chart_data, metric_buckets_for_account

pytestmark = pytest.mark.django_db

# 3h range, 5-minute periods: the window is 07:10 to 10:10 and its last bucket starts at 10:05.
NOW = datetime(2025, 3, 4, 10, 7, 30, tzinfo=UTC)
CHART = "account-concurrent-executions"


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


def series(payload: dict[str, Any], label: str) -> list[float | None]:
    chart = next(chart for chart in payload["charts"] if chart["slug"] == CHART)
    return next(dataset["data"] for dataset in chart["datasets"] if dataset["label"] == label)


def present(values: list[float | None]) -> list[tuple[int, float]]:
    return [(index, value) for index, value in enumerate(values) if value is not None]


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

    assert [chart["slug"] for chart in payload["charts"]] == [CHART]
    assert present(series(payload, "Concurrent executions")) == [(35, 4)]
    assert present(series(payload, "Unreserved concurrent executions")) == [(35, 1)]


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
    assert f'data-chart="{CHART}"' in content
    assert f'data-metrics-url="{reverse("monitoring:account-metrics")}"' in content
    embedded = response.context["account_metrics"]
    assert [value for _, value in present(series(embedded, "Concurrent executions"))] == [6]


def test_the_dashboard_takes_its_range_from_the_address(user):
    client = signed_in_client(user)

    chosen = client.get(reverse("monitoring:dashboard"), {"range": "1d"})
    unknown = client.get(reverse("monitoring:dashboard"), {"range": "2h"})

    assert chosen.context["account_metrics"]["range"] == "1d"
    assert 'value="1d"\n              aria-pressed="true"' in chosen.content.decode()
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
    assert [value for _, value in present(series(payload, "Unreserved concurrent executions"))] == [
        3
    ]


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
