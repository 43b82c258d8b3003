"""The Aliases tab in a real browser: creating a weighted alias through its dialog, an
error shown at its field, and deleting after confirming."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from console.tests.factories import make_function
from functions.models import FunctionAlias
from functions.services import function_deploy_code, function_version_publish
from tests.browser import signed_in_page

FORM_ERROR_STATUS = ("status of 400",)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_creating_and_deleting_a_weighted_alias(live_server: Any, user: User) -> None:
    function = make_function(user, "hello")
    function_version_publish(function=function)
    function = function_deploy_code(
        function=function, files={"lambda_function.py": "def lambda_handler(e, c):\n    return 2\n"}
    )
    function_version_publish(function=function)
    url = f"{live_server.url}{reverse('functions:detail', args=[function.pk])}?tab=aliases"

    with signed_in_page(live_server.url, user, ignored=FORM_ERROR_STATUS) as (page, problems):
        page.goto(url)
        page.get_by_role("button", name="Create alias").click()
        dialog = page.locator("#alias-create-modal")
        expect(dialog).to_be_visible()
        dialog.get_by_label("Name").fill("123")
        dialog.get_by_label("Version", exact=True).select_option("1")
        dialog.get_by_role("button", name="Save").click()

        dialog = page.locator("#alias-create-modal")
        expect(dialog).to_be_visible()
        expect(dialog.locator(".field-error")).to_contain_text("cannot be only digits")
        dialog.get_by_label("Name").fill("canary")
        dialog.get_by_label("Additional version").select_option("2")
        dialog.get_by_label("Weight (%)").fill("30")
        dialog.get_by_role("button", name="Save").click()

        expect(page.locator(".flash-stack")).to_contain_text("Successfully created alias canary")
        row = page.locator(".aliases-table tbody tr").first
        expect(row).to_contain_text("Version 1: 70%")
        expect(row).to_contain_text("version 2: 30%")

        row.get_by_role("button", name="Delete").click()
        page.locator("#alias-delete-modal-canary").get_by_role("button", name="Delete").click()
        expect(page.locator(".flash-stack")).to_contain_text("Deleted alias canary")
        expect(page.get_by_text("No aliases")).to_be_visible()
        assert problems.messages == []
    assert not FunctionAlias.objects.exists()
