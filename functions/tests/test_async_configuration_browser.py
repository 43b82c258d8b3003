"""Add destination from the function overview, then Configuration -> Asynchronous
invocation, in a real browser."""

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
from invocations.async_config import event_invoke_config_get
from monitoring.services import MetricSample, metric_samples_record
from tests.browser import signed_in_page

FORM_ERROR_STATUS = ("status of 400",)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_adding_a_destination_and_editing_the_asynchronous_configuration(
    live_server: Any, user: User
) -> None:
    function = make_function(user, "orders")
    make_function(user, "order-failures")
    url = f"{live_server.url}{reverse('functions:detail', args=[function.pk])}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in_page(live_server.url, user, ignored=FORM_ERROR_STATUS) as (page, problems):
        page.goto(url)
        page.get_by_role("link", name="Add destination").click()
        expect(page.get_by_role("heading", name="Add destination")).to_be_visible()
        page.get_by_label("On failure").check()
        page.get_by_label("Destination", exact=True).select_option(label="order-failures")
        page.screenshot(path=str(SCREENSHOTS / "destination-add.png"), full_page=True)
        page.get_by_role("button", name="Save").click()

        expect(page.locator(".flash-stack")).to_contain_text("Successfully saved")
        table = page.locator("#destinations-table")
        expect(table).to_contain_text("On failure")
        expect(table).to_contain_text("order-failures")
        page.screenshot(path=str(SCREENSHOTS / "destinations.png"), full_page=True)

        page.get_by_role("link", name="Asynchronous invocation").click()
        expect(page.locator("#async-settings")).to_contain_text("6h 0min 0sec")
        page.get_by_role("link", name="Edit", exact=True).click()
        page.get_by_label("Hours").fill("0")
        page.get_by_label("Minutes").fill("0")
        page.get_by_label("Seconds").fill("30")
        page.get_by_label("Retry attempts").select_option("0")
        page.get_by_role("button", name="Save").click()

        expect(page.locator(".field-error")).to_contain_text("between 60 and 21600")
        expect(page.get_by_label("Seconds")).to_have_value("30")
        page.screenshot(path=str(SCREENSHOTS / "async-invocation-error.png"), full_page=True)
        page.get_by_label("Minutes").fill("5")
        page.get_by_role("button", name="Save").click()

        expect(page.locator(".flash-stack")).to_contain_text("Successfully updated")
        expect(page.locator("#async-settings")).to_contain_text("0h 5min 30sec")
        page.screenshot(path=str(SCREENSHOTS / "async-invocation.png"), full_page=True)
        assert problems.messages == []

    config = event_invoke_config_get(function=function, qualifier="$LATEST")
    assert config is not None
    assert (config.maximum_retry_attempts, config.maximum_event_age_in_seconds) == (0, 330)
    assert config.on_failure.endswith(":function:order-failures")


def test_the_monitor_tab_charts_the_async_metrics(live_server: Any, user: User) -> None:
    function = make_function(user, "orders")
    now = timezone.now()
    for minutes_ago, received, dropped, age_ms in ((20, 4, 1, 900.0), (5, 2, 0, 60_000.0)):
        metric_samples_record(
            owner_id=user.pk,
            dimensions=[("FunctionName", "orders")],
            at=now - timedelta(minutes=minutes_ago),
            samples=[
                MetricSample("AsyncEventsReceived", received),
                MetricSample("AsyncEventsDropped", dropped),
                MetricSample("AsyncEventAge", age_ms),
                MetricSample("DestinationDeliveryFailures", dropped),
            ],
        )
    url = f"{live_server.url}{reverse('functions:detail', args=[function.pk])}?tab=monitor"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(url)
        for slug in ("async-events", "async-event-age", "async-delivery-failures"):
            chart = page.locator(f'[data-chart="{slug}"]')
            expect(chart.locator("canvas")).to_be_visible()
            expect(chart.locator("[data-chart-empty]")).to_be_hidden()
        expect(page.locator('[data-chart="iterator-age"] [data-chart-empty]')).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "monitor-async-metrics.png"), full_page=True)
        assert problems.messages == []
