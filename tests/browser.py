"""Chromium for the browser tests: one launch configuration, a page signed in as a user, and
a collector of what a page reports going wrong.

Playwright's sync API keeps an event loop running in the test's thread while a browser is
open, and Django refuses database calls from a thread with a running loop: a test reads the
database before or after the `with` block, or through `query_database`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}

T = TypeVar("T")


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageProblems:
    """Uncaught script errors, Content Security Policy violations and other console errors,
    as messages; console errors containing one of `ignored` are expected ones (e.g. the
    browser's note on a 400 answer the page shows as a form error)."""

    ignored: tuple[str, ...] = ()
    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> PageProblems:
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))
        page.on("console", self._on_console)
        return self

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error" or any(part in message.text for part in self.ignored):
            return
        if "Content Security Policy" in message.text:
            self.messages.append(f"CSP violation: {message.text}")
        else:
            self.messages.append(f"console error: {message.text}")


def session_cookie_value(user: User) -> str:
    """A session for `user`, as the browser's cookie carries it. Reads the database."""
    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


@contextmanager
def signed_in_page(
    live_server_url: str,
    user: User,
    *,
    viewport: ViewportSize = VIEWPORT,
    ignored: Iterable[str] = (),
) -> Iterator[tuple[Page, PageProblems]]:
    """A page whose browser is signed in as `user`, and what the page reports going wrong
    (console errors containing one of `ignored` aside)."""
    session = session_cookie_value(user)
    with chromium() as browser:
        context = browser.new_context(viewport=viewport)
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server_url}]
        )
        page = context.new_page()
        yield page, PageProblems(ignored=tuple(ignored)).watch(page)


def query_database(query: Callable[[], T]) -> T:
    """Run `query` in another thread, for a test that reads the database while a browser is
    open."""

    def run() -> T:
        try:
            return query()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()
