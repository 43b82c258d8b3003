"""The Dashboard in a real browser: reached from the side navigation, it draws the
account-level charts (errors and success rate, invocations, duration and throttles of two
functions together, and the account's concurrent executions) and redraws them for another
time range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from console.tests.factories import make_function
from monitoring.services import ACCOUNT_WIDE, MetricSample, metric_samples_record
from tests.browser import signed_in_page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# (minutes ago, all functions in flight, unreserved ones in flight)
ACCOUNT_SAMPLES = ((50, 2, 2), (41, 6, 4), (33, 9, 5), (24, 4, 1), (12, 12, 8), (4, 7, 3))
CHART_SLUGS = [
    "account-errors",
    "account-invocations",
    "account-duration",
    "account-throttles",
    "account-concurrent-executions",
]


@dataclass(frozen=True)
class Minute:
    """What one function did in one minute."""

    minutes_ago: int
    function: str
    durations: tuple[float, ...]
    failed: int
    throttled: int


def traffic() -> list[Minute]:
    """Every minute of the last hour: `orders` is quick and steady, `images` slower and
    busier, with a burst of errors and throttles around 20 minutes ago."""
    minutes = []
    for minutes_ago in range(58, 0, -1):
        burst = 17 <= minutes_ago <= 23
        orders = 3 + (minutes_ago // 8) % 3
        images = 2 + (minutes_ago // 5) % 4
        minutes.append(
            Minute(
                minutes_ago,
                "orders",
                tuple(80.0 + (minutes_ago * 7 + call * 13) % 40 for call in range(orders)),
                failed=1 if minutes_ago % 13 == 0 else 0,
                throttled=0,
            )
        )
        minutes.append(
            Minute(
                minutes_ago,
                "images",
                tuple(600.0 + (minutes_ago * 29 + call * 41) % 300 for call in range(images)),
                failed=2 if burst else 0,
                throttled=4 - abs(minutes_ago - 20) if burst else 0,
            )
        )
    return minutes


def record(owner: User, minute: Minute, now: datetime) -> None:
    """The datapoints the worker writes for these invocations and throttles."""
    at = now - timedelta(minutes=minute.minutes_ago)
    dimensions = [("FunctionName", minute.function), ("ExecutedVersion", f"{minute.function}:1")]
    for index, duration in enumerate(minute.durations):
        metric_samples_record(
            owner_id=owner.pk,
            dimensions=dimensions,
            at=at,
            samples=[
                MetricSample("Invocations", 1),
                MetricSample("Errors", 1 if index < minute.failed else 0),
                MetricSample("Duration", duration),
            ],
        )
    for _ in range(minute.throttled):
        metric_samples_record(
            owner_id=owner.pk,
            dimensions=dimensions,
            at=at,
            samples=[MetricSample("Throttles", 1)],
        )


def datasets(page: Page, slug: str) -> dict[str, list[float]]:
    """The drawn chart's datasets, by label, without the empty periods."""
    result: dict[str, list[float]] = page.evaluate(
        """slug => {
            const canvas = document.querySelector(`[data-chart="${slug}"] canvas`);
            const chart = window.Chart.getChart(canvas);
            return Object.fromEntries(chart.data.datasets.map(
                d => [d.label, d.data.filter(v => v !== null)]));
        }""",
        slug,
    )
    return result


def test_the_dashboard_charts_the_accounts_functions_together(live_server: Any, user: User) -> None:
    make_function(user, "orders")
    make_function(user, "images")
    now = timezone.now()
    minutes = traffic()
    for minute in minutes:
        record(user, minute, now)
    for minutes_ago, account, unreserved in ACCOUNT_SAMPLES:
        metric_samples_record(
            owner_id=user.pk,
            dimensions=[ACCOUNT_WIDE],
            at=now - timedelta(minutes=minutes_ago),
            samples=[
                MetricSample("ConcurrentExecutions", account),
                MetricSample("UnreservedConcurrentExecutions", unreserved),
            ],
        )
    durations = [duration for minute in minutes for duration in minute.durations]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(f"{live_server.url}{reverse('functions:list')}")
        page.get_by_role("navigation", name="Stratus").get_by_role("link", name="Dashboard").click()

        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        expect(page.locator("[data-account-resources]")).to_contain_text("Lambda functions")
        titles = page.locator("[data-chart] h3")
        expect(titles).to_have_text(
            [
                "Error count and success rate (%)",
                "Invocations",
                "Duration",
                "Throttles",
                "Concurrent executions",
            ]
        )
        for slug in CHART_SLUGS:
            chart = page.locator(f'[data-chart="{slug}"]')
            expect(chart.locator("canvas")).to_be_visible()
            expect(chart.locator("[data-chart-empty]")).to_be_hidden()
        page.wait_for_function(
            f"() => window.Chart && Object.keys(window.Chart.instances).length === {len(CHART_SLUGS)}"
        )
        assert list(datasets(page, "account-errors")) == ["Errors", "Success rate (%)"]
        assert sum(datasets(page, "account-invocations")["Invocations"]) == len(durations)

        page.get_by_role("button", name="1h", exact=True).click()
        expect(page.get_by_role("button", name="1h", exact=True)).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator("[data-monitor-status]")).to_contain_text("Updated")
        assert page.url.endswith(f"{reverse('monitoring:dashboard')}?range=1h")
        assert page.locator("[data-monitor-period]").all_text_contents() == ["1 minute"] * 5
        invocations = datasets(page, "account-invocations")["Invocations"]
        errors = datasets(page, "account-errors")
        duration = datasets(page, "account-duration")
        concurrency = datasets(page, "account-concurrent-executions")
        assert (len(invocations), sum(invocations)) == (58, len(durations))
        assert sum(errors["Errors"]) == sum(minute.failed for minute in minutes)
        assert min(errors["Success rate (%)"]) < 100
        assert sum(datasets(page, "account-throttles")["Throttles"]) == sum(
            minute.throttled for minute in minutes
        )
        assert (min(duration["Minimum"]), max(duration["Maximum"])) == (
            min(durations),
            max(durations),
        )
        assert [max(concurrency[label]) for label in concurrency] == [12, 8]
        page.mouse.move(0, 0)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        assert problems.messages == []
