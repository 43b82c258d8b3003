"""The function pages in a real browser: htmx filtering, the create form's tiles and gallery,
the delete confirmation, and the environment variables table."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from console.tests.factories import make_blueprint, make_function
from functions.models import Function
from tests.browser import signed_in_page

# A form answered with 400 shows its errors in the page; the browser logs the status too.
FORM_ERROR_STATUS = ("status of 400",)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_typing_in_the_filter_updates_the_table_in_place(live_server: Any, user: User) -> None:
    make_function(user, "orders-api")
    make_function(user, "billing-worker")

    with signed_in_page(live_server.url, user, ignored=FORM_ERROR_STATUS) as (page, problems):
        page.goto(live_server.url + reverse("functions:list"))
        page.evaluate("window.notReloaded = true")
        page.get_by_placeholder("Filter functions by name").fill("bill")

        rows = page.locator("#function-table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("billing-worker")
        expect(page).to_have_url(f"{live_server.url}/functions/?q=bill&sort=name")
        assert page.evaluate("window.notReloaded") is True
        assert problems.messages == []


def test_creating_a_function_from_a_blueprint(live_server: Any, user: User) -> None:
    make_blueprint("echo-python", title="Echo", tags=["starter"])
    make_blueprint("queue-python", title="Queue consumer", tags=["sqs"])

    with signed_in_page(live_server.url, user, ignored=FORM_ERROR_STATUS) as (page, problems):
        page.goto(live_server.url + reverse("functions:create"))
        gallery = page.locator("section[data-show-when='mode=blueprint']")
        expect(gallery).to_be_hidden()

        page.get_by_text("Use a blueprint").click()
        expect(gallery).to_be_visible()
        search = page.get_by_placeholder("Filter by name, description, runtime or tag")
        search.fill("sqs")
        search.press("Enter")
        expect(page.locator("#blueprint-results .card")).to_have_count(1)
        page.get_by_text("Queue consumer").click()
        page.get_by_label("Function name").fill("queue-reader")
        page.get_by_role("button", name="Create function").click()

        expect(page.locator(".flash-stack")).to_contain_text(
            "Successfully created the function queue-reader."
        )
        expect(page.locator("h1")).to_have_text("queue-reader")
        assert problems.messages == []

    assert Function.objects.get(owner=user, name="queue-reader").blueprint == "queue-python"


def test_delete_stays_disabled_until_confirm_is_typed(live_server: Any, user: User) -> None:
    function = make_function(user, "doomed")

    with signed_in_page(live_server.url, user, ignored=FORM_ERROR_STATUS) as (page, problems):
        page.goto(live_server.url + reverse("functions:detail", kwargs={"pk": function.pk}))
        page.get_by_text("Actions").click()
        page.locator(".dropdown-menu").get_by_role("button", name="Delete").click()

        dialog = page.locator("dialog#delete-function-modal")
        expect(dialog).to_be_visible()
        delete = dialog.get_by_role("button", name="Delete")
        expect(delete).to_be_disabled()
        confirm = dialog.get_by_placeholder("confirm")
        expect(confirm).to_be_focused()
        confirm.fill("confir")
        expect(delete).to_be_disabled()
        confirm.fill("confirm")
        expect(delete).to_be_enabled()
        delete.click()

        expect(page.locator(".flash-stack")).to_contain_text(
            "Successfully deleted function doomed."
        )
        expect(page.locator("h1")).to_contain_text("Functions")
        assert problems.messages == []

    assert not Function.objects.filter(pk=function.pk).exists()


def test_the_arn_wraps_only_after_a_colon(live_server: Any, user: User) -> None:
    function = make_function(user, "a-hyphenated-name-long-enough-to-need-a-second-line-somewhere")

    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(live_server.url + reverse("functions:detail", kwargs={"pk": function.pk}))
        arn = page.locator("#function-arn")
        copied = page.get_by_role("button", name="Copy ARN").first.get_attribute("data-copy")
        expect(arn).to_have_text(copied or "")
        expect(arn.locator("span").last).to_have_text(function.name)
        for width in range(360, 1480, 40):
            page.set_viewport_size({"width": width, "height": 800})
            segment_lines = arn.evaluate(
                """(arn) => [...arn.querySelectorAll(":scope > span")].map((segment) =>
                    [...segment.getClientRects()].map((rect) => Math.round(rect.top)))"""
            )
            assert all(len(lines) == 1 for lines in segment_lines), (width, segment_lines)
            assert arn.evaluate("(arn) => arn.scrollWidth <= arn.clientWidth"), width
        assert problems.messages == []
