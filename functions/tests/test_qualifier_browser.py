"""Switching the function page to an alias with the version selector and testing it there."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from console.tests.factories import make_function
from functions.alias_services import function_alias_create
from functions.services import function_deploy_code, function_version_publish
from invocations.models import Invocation
from tests.browser import query_database, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def answering(answer: int) -> dict[str, str]:
    return {"lambda_function.py": f"def lambda_handler(e, c):\n    return {answer}\n"}


def test_switching_to_an_alias_and_testing_it(live_server: Any, user: User) -> None:
    function = make_function(user, "hello")
    function = function_deploy_code(function=function, files=answering(1))
    function_version_publish(function=function)
    function = function_deploy_code(function=function, files=answering(2))
    function_alias_create(function=function, name="live", function_version="1")
    url = f"{live_server.url}{reverse('functions:detail', args=[function.pk])}?tab=test"

    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(url)
        page.locator("[data-qualifier-selector] summary").click()
        page.get_by_role("menuitem", name="Alias: live").click()

        expect(page.locator("#function-heading")).to_have_text("hello:live")
        expect(page.locator("#function-arn")).to_contain_text(":function:hello:live")
        expect(page.locator('nav.tabs a[aria-current="page"]')).to_have_text("Test")
        page.locator("[data-run-test]").click()

        result = page.locator("#execution-result")
        expect(result).to_contain_text("Executed version")
        expect(result.locator(".execution-summary")).to_contain_text("1")
        assert problems.messages == []

    invocation = query_database(lambda: Invocation.objects.get(function=function))
    assert (invocation.qualifier, invocation.executed_version) == ("live", "1")
    assert invocation.response == "1"
