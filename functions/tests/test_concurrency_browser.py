"""Configuration -> Concurrency in a real browser: an over-large reservation refused at its
field, a reservation saved, and a provisioned concurrency configuration added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import reverse
from playwright.sync_api import expect

from console.tests.factories import make_function
from functions.models import ProvisionedConcurrencyConfig
from functions.services import function_version_publish
from tests.browser import signed_in_page

FORM_ERROR_STATUS = ("status of 400",)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@override_settings(STRATUS_ACCOUNT_CONCURRENCY_LIMIT=200)
def test_reserving_and_provisioning_concurrency(live_server: Any, user: User) -> None:
    function = make_function(user, "orders")
    function_version_publish(function=function)
    url = (
        f"{live_server.url}{reverse('functions:detail', args=[function.pk])}"
        "?tab=configuration&section=concurrency"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with signed_in_page(live_server.url, user, ignored=FORM_ERROR_STATUS) as (page, problems):
        page.goto(url)
        expect(page.get_by_test_id("function-concurrency")).to_have_text(
            "Use unreserved account concurrency"
        )
        expect(page.get_by_test_id("unreserved-concurrency")).to_have_text("200 of 200")
        page.get_by_role("link", name="Edit", exact=True).click()
        page.get_by_label("Reserve concurrency").check()
        page.get_by_label("Reserved concurrency", exact=True).fill("101")
        page.get_by_role("button", name="Save").click()

        expect(page.locator(".field-error")).to_contain_text("below its minimum value of [100]")
        page.screenshot(path=str(SCREENSHOTS / "concurrency-edit-error.png"), full_page=True)
        page.get_by_label("Reserved concurrency", exact=True).fill("20")
        page.get_by_role("button", name="Save").click()

        expect(page.locator(".flash-stack")).to_contain_text("Successfully updated")
        expect(page.get_by_test_id("function-concurrency")).to_have_text("Reserved: 20")
        expect(page.get_by_test_id("unreserved-concurrency")).to_have_text("180 of 200")

        page.get_by_role("link", name="Add configuration").click()
        page.get_by_label("Version or alias", exact=True).select_option("1")
        page.get_by_label("Provisioned concurrency", exact=True).fill("2")
        page.get_by_role("button", name="Save").click()

        expect(page.locator(".flash-stack")).to_contain_text("Provisioned concurrency of 1 saved")
        row = page.locator(".provisioned-table tbody tr").first
        expect(row).to_contain_text("Version")
        expect(row).to_contain_text("In progress")
        page.screenshot(path=str(SCREENSHOTS / "concurrency.png"), full_page=True)
        assert problems.messages == []

    config = ProvisionedConcurrencyConfig.objects.get(function=function)
    assert (config.qualifier, config.requested) == ("1", 2)
