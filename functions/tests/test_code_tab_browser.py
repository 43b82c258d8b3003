"""The Code tab in a real browser: edit, see "Changes not deployed", deploy, see success."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect, sync_playwright

from functions import services
from functions.models import Function

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

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


@pytest.fixture
def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Playwright's sync API runs an event loop, during which Django refuses database calls in
    this thread: tests read the database only outside this block."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_code_tab(browser: Browser, live_server: Any, session: str, function: Function) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(
        live_server.url + reverse("functions:detail", kwargs={"pk": function.pk}) + "?tab=code"
    )
    expect(page.locator(".CodeMirror")).to_be_visible()
    assert errors == []
    return page


def test_edit_then_deploy(live_server, session_cookie, function):
    with chromium() as browser:
        page = open_code_tab(browser, live_server, session_cookie, function)
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


def test_new_file_in_a_folder_then_ctrl_s(live_server, session_cookie, function):
    with chromium() as browser:
        page = open_code_tab(browser, live_server, session_cookie, function)

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


def test_a_failed_deploy_keeps_the_edits(live_server, session_cookie, function):
    with chromium() as browser:
        page = open_code_tab(browser, live_server, session_cookie, function)
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


def test_windows_line_endings_are_kept(live_server, session_cookie, user):
    function = services.function_create(
        owner=user, name="crlf", role=None, files={"lambda_function.py": "x = 1\r\ny = 2\r\n"}
    )
    with chromium() as browser:
        page = open_code_tab(browser, live_server, session_cookie, function)
        expect(page.locator("[data-code-eol]")).to_have_text("CRLF")
        expect(page.locator("[data-code-status]")).to_be_hidden()

        page.locator(".CodeMirror-code").click()
        page.keyboard.press("Control+End")
        page.keyboard.type("z = 3")
        page.get_by_role("button", name="Deploy").click()
        expect(page.locator(".code-alerts .alert-success")).to_be_visible()

    assert stored_files(function) == {"lambda_function.py": "x = 1\r\ny = 2\r\nz = 3"}
