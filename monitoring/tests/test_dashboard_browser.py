"""The Dashboard in a real browser: reached from the side navigation, it draws the
account-level concurrent executions chart and redraws it for another time range."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from console.tests.factories import make_function
from monitoring.services import ACCOUNT_WIDE, MetricSample, metric_samples_record
from tests.browser import signed_in_page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# (minutes ago, all functions in flight, unreserved ones in flight)
ACCOUNT_SAMPLES = ((50, 2, 2), (41, 6, 4), (33, 9, 5), (24, 4, 1), (12, 12, 8), (4, 7, 3))


def test_the_dashboard_charts_account_concurrency(live_server: Any, user: User) -> None:
    make_function(user, "orders")
    now = timezone.now()
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(f"{live_server.url}{reverse('functions:list')}")
        page.get_by_role("navigation", name="Stratus").get_by_role("link", name="Dashboard").click()

        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        expect(page.locator("[data-account-resources]")).to_contain_text("Lambda functions")
        chart = page.locator('[data-chart="account-concurrent-executions"]')
        expect(chart.get_by_role("heading", name="Concurrent executions")).to_be_visible()
        expect(chart.locator("canvas")).to_be_visible()
        expect(chart.locator("[data-chart-empty]")).to_be_hidden()
        page.wait_for_function(
            "() => window.Chart && Object.keys(window.Chart.instances).length === 1"
        )
        labels = page.evaluate(
            "() => Object.values(window.Chart.instances)[0].data.datasets.map(d => d.label)"
        )
        assert labels == ["Concurrent executions", "Unreserved concurrent executions"]

        page.get_by_role("button", name="1h", exact=True).click()
        expect(page.get_by_role("button", name="1h", exact=True)).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator("[data-monitor-status]")).to_contain_text("Updated")
        assert page.url.endswith(f"{reverse('monitoring:dashboard')}?range=1h")
        maxima = page.evaluate(
            "() => Object.values(window.Chart.instances)[0].data.datasets"
            ".map(d => Math.max(...d.data.filter(v => v !== null)))"
        )
        assert maxima == [12, 8]
        page.mouse.move(0, 0)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        assert problems.messages == []
