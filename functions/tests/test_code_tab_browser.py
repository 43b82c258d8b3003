"""The Code tab in a real browser: edit, see "Changes not deployed", deploy, see success."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import Page, expect

from functions import services
from functions.models import Function
from tests.browser import signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def stored_files(function: Function) -> dict[str, str]:
    function.refresh_from_db()
    with zipfile.ZipFile(io.BytesIO(bytes(function.code.zip_bytes))) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


@pytest.fixture
def function(user: User) -> Function:
    return services.function_create(
        owner=user,
        name="hello",
        role=None,
        files={"lambda_function.py": services.DEFAULT_PYTHON_CODE, "lib/util.py": "X = 1\n"},
    )


@contextmanager
def code_tab(live_server: Any, user: User, function: Function) -> Iterator[Page]:
    """The function's Code tab, loaded without script errors. Tests read the database only
    outside this block."""
    with signed_in_page(live_server.url, user) as (page, problems):
        page.goto(
            live_server.url + reverse("functions:detail", kwargs={"pk": function.pk}) + "?tab=code"
        )
        expect(page.locator(".CodeMirror")).to_be_visible()
        assert problems.messages == []
        yield page


def test_edit_then_deploy(live_server, user, function):
    with code_tab(live_server, user, function) as page:
        status = page.locator("[data-code-status]")
        deploy = page.get_by_role("button", name="Deploy")
        expect(status).to_be_hidden()
        expect(deploy).to_be_disabled()
        expect(page.locator(".ide-tab.is-active")).to_have_text("lambda_function.py")

        page.locator(".CodeMirror-code").click()
        page.keyboard.press("Control+End")
        page.keyboard.type("GREETING = 'hi'")

        expect(status).to_be_visible()
        expect(status).to_have_text("Changes not deployed")
        expect(deploy).to_be_enabled()
        expect(page.locator('.ide-tree-item[data-path="lambda_function.py"]')).to_have_class(
            "ide-tree-item is-active is-changed"
        )
        expect(page.locator(".ide-tab.is-active")).to_have_class("ide-tab is-active is-changed")

        deploy.click()

        expect(page.locator(".code-alerts .alert-success")).to_have_text(
            "Successfully updated the function hello."
        )
        expect(status).to_be_hidden()
        expect(deploy).to_be_disabled()
        expect(page.locator(".ide-tab.is-active")).to_have_class("ide-tab is-active")
        shown_sha = page.locator('[data-code-prop="code_sha256"]').inner_text()

    files = stored_files(function)
    assert files["lambda_function.py"] == services.DEFAULT_PYTHON_CODE + "GREETING = 'hi'"
    assert files["lib/util.py"] == "X = 1\n"
    assert shown_sha == function.code_sha256


def test_new_file_in_a_folder_then_ctrl_s(live_server, user, function):
    with code_tab(live_server, user, function) as page:
        page.locator('.ide-tree-item[data-path="lib"] > .ide-row').click()
        page.get_by_role("button", name="New file").click()
        page.keyboard.type("extra.py")
        page.keyboard.press("Enter")
        expect(page.locator(".ide-tab.is-active")).to_have_text("extra.py")
        expect(page.locator("[data-code-language]")).to_have_text("Python")
        page.keyboard.type("def f():\nreturn 2")
        page.keyboard.press("Control+s")

        expect(page.locator(".code-alerts .alert-success")).to_be_visible()

    assert stored_files(function)["lib/extra.py"] == "def f():\n    return 2"


def test_a_failed_deploy_keeps_the_edits(live_server, user, function):
    with code_tab(live_server, user, function) as page:
        # Another tab deploys first.
        token = page.locator("#code-tab input[name=csrfmiddlewaretoken]").first.input_value()
        other = page.request.post(
            live_server.url + reverse("code:deploy", kwargs={"pk": function.pk}),
            data={"files": {"lambda_function.py": "# other\n"}},
            headers={"X-CSRFToken": token, "Referer": live_server.url},
        )
        assert other.ok

        page.locator(".CodeMirror-code").click()
        page.keyboard.type("# mine\n")
        page.get_by_role("button", name="Deploy").click()

        expect(page.locator(".code-alerts .alert-error")).to_contain_text("changed elsewhere")
        expect(page.locator("[data-code-status]")).to_be_visible()
        expect(page.locator(".CodeMirror-code")).to_contain_text("# mine")

    assert stored_files(function) == {"lambda_function.py": "# other\n"}


def test_windows_line_endings_are_kept(live_server, user):
    function = services.function_create(
        owner=user, name="crlf", role=None, files={"lambda_function.py": "x = 1\r\ny = 2\r\n"}
    )
    with code_tab(live_server, user, function) as page:
        expect(page.locator("[data-code-eol]")).to_have_text("CRLF")
        expect(page.locator("[data-code-status]")).to_be_hidden()

        page.locator(".CodeMirror-code").click()
        page.keyboard.press("Control+End")
        page.keyboard.type("z = 3")
        page.get_by_role("button", name="Deploy").click()
        expect(page.locator(".code-alerts .alert-success")).to_be_visible()

    assert stored_files(function) == {"lambda_function.py": "x = 1\r\ny = 2\r\nz = 3"}
