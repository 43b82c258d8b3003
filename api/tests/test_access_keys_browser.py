"""The Access keys page in Chromium: create a key, see its secret once, delete it through
the confirmation dialog."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from api.models import AccessKey
from tests.browser import query_database, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_then_delete_a_key_in_the_browser(live_server: Any, user: User):
    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(f"{live_server.url}/account/access-keys/")
        page.get_by_role("button", name="Create access key").click()

        secret = page.locator("[data-secret-access-key]").inner_text()
        key_id = page.locator("[data-access-key-id]").inner_text()
        assert len(secret) == 40
        assert page.get_by_role("heading", name="Access key created").is_visible()

        page.goto(f"{live_server.url}/account/access-keys/")
        assert secret not in page.content()
        page.get_by_role("button", name="Delete").click()
        dialog = page.get_by_role("dialog")
        confirm = dialog.get_by_role("button", name="Delete")
        assert confirm.is_disabled()
        dialog.get_by_label("To confirm, enter the access key ID.").fill(key_id)
        confirm.click()
        page.wait_for_url(f"{live_server.url}/account/access-keys/")
        assert page.get_by_text(f"Access key {key_id} was deleted.").is_visible()
        assert problems.messages == []

    assert not query_database(lambda: AccessKey.objects.exists())
