"""AWS's "Create a Lambda function with the console" tutorial, walked in a real browser on the
real stack: the live server, Redis, and a separate Celery worker process running the code.

Each step saves a screenshot into $STRATUS_SCREENSHOT_DIR (default var/screenshots/tutorial
under the project), named in order, to be looked at afterwards: the whole page, except for
the delete dialog, which covers the viewport only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Locator, Page, ViewportSize, expect

from functions.blueprint_loader import blueprints_sync
from functions.models import Function, Role
from invocations.models import Invocation
from invocations.models import TestEvent as SavedTestEvent  # pytest would collect Test*
from tests.browser import PageProblems, chromium, query_database

VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
DEFAULT_SCREENSHOT_DIR = "var/screenshots/tutorial"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

USERNAME = "tutorial"
PASSWORD = "a long tutorial passphrase"
BLUEPRINT_SLUG = "hello-world-python"
BLUEPRINT_TITLE = "Hello world function"
FUNCTION_NAME = "hello-world-python"
ROLE_NAME = "lambda_basic_execution"
EVENT_NAME = "HelloWorldEvent"
GREETING = "hello, world!"
MORE_TESTS = 3
STEP_TIMEOUT_MS = 15_000
# The Test request waits for the function to finish, including a cold start the first time.
TEST_RUN_TIMEOUT_MS = 40_000

# The editor is CodeMirror 5: its wrapper element carries the editor instance.
EDITOR = "document.querySelector('.event-json-editor').CodeMirror"
SELECT_IN_EDITOR = f"""(word) => {{
    const editor = {EDITOR};
    const start = editor.getValue().indexOf(word);
    if (start < 0) throw new Error(`${{word}} is not in the event`);
    editor.focus();
    editor.setSelection(editor.posFromIndex(start), editor.posFromIndex(start + word.length));
}}"""

pytestmark = [
    pytest.mark.worker,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def screenshot_dir() -> Path:
    configured = os.environ.get("STRATUS_SCREENSHOT_DIR")
    directory = Path(configured) if configured else settings.BASE_DIR / DEFAULT_SCREENSHOT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    # A step renamed or removed must not leave last run's picture behind.
    for stale in directory.glob("[0-9][0-9]-*.png"):
        stale.unlink()
    return directory


@dataclass
class Walkthrough:
    """The page, what it reported going wrong, and a screenshot per step."""

    page: Page
    directory: Path
    problems: PageProblems
    screenshots: list[Path] = field(default_factory=list)

    def step(self, name: str, *, full_page: bool = True) -> None:
        """Check the page reported nothing wrong so far, then save it as the next step."""
        assert self.problems.messages == [], f"before step {name!r}: {self.problems.messages}"
        path = self.directory / f"{len(self.screenshots) + 1:02d}-{name}.png"
        if full_page:
            # A full-page capture draws the sticky header and sidebar where the page is
            # scrolled to.
            self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        self.screenshots.append(path)


@contextmanager
def walkthrough() -> Iterator[Walkthrough]:
    with chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        walk = Walkthrough(page=page, directory=screenshot_dir(), problems=PageProblems())
        walk.problems.watch(page)
        yield walk
        assert walk.problems.messages == [], walk.problems.messages


def summary_value(result: Locator, label: str) -> Locator:
    row = result.locator(".execution-summary > div").filter(
        has=result.page.get_by_text(label, exact=True)
    )
    return row.locator("dd")


def editor_event(page: Page) -> Any:
    # A form htmx swaps in gets its editor a moment after it appears.
    expect(page.locator(".event-json-editor")).to_be_visible()
    return json.loads(page.evaluate(f"() => {EDITOR}.getValue()"))


def sign_in(walk: Walkthrough, base_url: str) -> None:
    page = walk.page
    page.goto(base_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    walk.step("sign-in")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{base_url}/functions/")
    expect(page.locator("h1")).to_have_text("Functions (0)")
    walk.step("functions-list")


def create_from_blueprint(walk: Walkthrough) -> int:
    """Create function, Use a blueprint, Hello world, with a role from policy templates.
    Returns the new function's id, read from the address bar."""
    page = walk.page
    page.get_by_role("link", name="Create function").first.click()
    expect(page.locator("h1")).to_have_text("Create function")
    page.get_by_text("Use a blueprint").click()
    expect(page.get_by_role("heading", name="Blueprints")).to_be_visible()

    search = page.get_by_placeholder("Filter by name, description, runtime or tag")
    with page.expect_response(re.compile(r"/functions/blueprints/")):
        search.fill("hello")
    card = page.locator("#blueprint-results .card").filter(has_text=BLUEPRINT_TITLE)
    expect(card).to_contain_text("Python 3.11")
    card.click()
    expect(card.get_by_role("radio")).to_be_checked()
    walk.step("use-a-blueprint")

    page.get_by_label("Function name").fill(FUNCTION_NAME)
    page.get_by_text("Change default execution role").click()
    page.get_by_label("Create a new role from AWS policy templates").check()
    page.get_by_label("Role name").fill(ROLE_NAME)
    walk.step("basic-information")
    page.get_by_role("button", name="Create function").click()

    expect(page.locator(".flash-stack")).to_contain_text(
        f"Successfully created the function {FUNCTION_NAME}."
    )
    expect(page.locator("h1")).to_have_text(FUNCTION_NAME)
    walk.step("function-created")
    match = re.search(r"/functions/(\d+)/", page.url)
    assert match, page.url
    return int(match.group(1))


def save_hello_world_event(walk: Walkthrough) -> None:
    """Test tab: a new event from the hello-world template, value1 changed, saved."""
    page = walk.page
    page.get_by_role("link", name="Test", exact=True).click()
    expect(page).to_have_url(re.compile(r"tab=test"))
    expect(page.locator(".event-json-editor")).to_be_visible()
    expect(page.get_by_label("Create new event")).to_be_checked()

    page.get_by_label("Event name").fill(EVENT_NAME)
    template = page.locator("#test-event-template")
    expect(template).to_have_value("hello-world")
    generation = page.evaluate(f"() => {EDITOR}.changeGeneration()")
    with page.expect_response(re.compile(r"/event-templates/hello-world/")):
        template.select_option(label="Hello World")
    page.wait_for_function(f"(generation) => !{EDITOR}.isClean(generation)", arg=generation)
    assert editor_event(page) == {"key1": "value1", "key2": "value2", "key3": "value3"}
    walk.step("test-event-from-template")

    page.evaluate(SELECT_IN_EDITOR, "value1")
    page.keyboard.type(GREETING)
    assert editor_event(page) == {"key1": GREETING, "key2": "value2", "key3": "value3"}
    walk.step("test-event-edited")

    save = page.get_by_role("button", name="Save", exact=True)
    expect(save).to_be_enabled()
    save.click()
    expect(page.locator("#test-event .alert-success")).to_have_text(
        f"The test event {EVENT_NAME} was successfully saved."
    )
    expect(page.get_by_label("Edit saved event")).to_be_checked()
    expect(page.locator("#test-event-select option:checked")).to_have_text(EVENT_NAME)
    assert editor_event(page)["key1"] == GREETING
    walk.step("test-event-saved")


def run_test(walk: Walkthrough, *, cold: bool) -> str:
    """Choose Test and check the execution result; returns the invocation's request ID."""
    page = walk.page
    result = page.locator("#execution-result")
    shown_before = summary_value(result, "Request ID")
    previous = shown_before.inner_text() if shown_before.count() else None

    with page.expect_response(
        lambda response: response.request.method == "POST" and response.url.endswith("/test/"),
        timeout=TEST_RUN_TIMEOUT_MS,
    ) as answer:
        page.get_by_role("button", name="Test", exact=True).click()
    assert answer.value.ok, answer.value.status
    # The notice of the save does not outlive the Test run after it.
    expect(page.locator("#test-event .alert-success")).to_have_count(0)

    request_id_shown = summary_value(result, "Request ID")
    if previous is not None:
        expect(request_id_shown).not_to_have_text(previous)
    expect(result.locator(".status")).to_have_text("Execution result: succeeded")
    expect(result.locator(".execution-response")).to_have_text(json.dumps(GREETING))
    request_id = request_id_shown.inner_text().strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id), request_id

    init_duration = result.locator(".execution-summary dt").filter(
        has_text=re.compile(r"^Init duration$")
    )
    expect(init_duration).to_have_count(1 if cold else 0)

    logs = result.locator(".execution-logs")
    expect(logs).to_contain_text(f"value1 = {GREETING}")
    report_lines = [
        line for line in logs.inner_text().splitlines() if line.startswith("REPORT RequestId:")
    ]
    assert len(report_lines) == 1, logs.inner_text()
    assert report_lines[0].startswith(f"REPORT RequestId: {request_id}\t")
    # Each of its tab-separated fields is kept whole when the line wraps.
    expect(
        logs.locator(".log-field").filter(has_text=re.compile(r"^Max Memory Used: \d+ MB$"))
    ).to_have_count(1)
    return request_id


def check_monitor(walk: Walkthrough, request_ids: list[str]) -> None:
    """Monitor tab: the Invocations chart has the invocations; the Logs view lists them."""
    page = walk.page
    page.get_by_role("link", name="Monitor", exact=True).click()
    expect(page).to_have_url(re.compile(r"tab=monitor"))
    invocations_chart = page.locator("[data-chart='invocations']")
    page.wait_for_function(
        "() => window.Chart && Object.keys(Chart.instances).length"
        " === document.querySelectorAll('[data-chart] canvas').length"
    )
    expect(invocations_chart.locator("[data-chart-empty]")).to_be_hidden()
    charted = page.evaluate(
        """() => Chart.getChart(document.querySelector("[data-chart='invocations'] canvas"))
            .data.datasets[0].data.reduce((total, value) => total + (value || 0), 0)"""
    )
    assert charted == len(request_ids)
    time_ticks = page.evaluate(
        """() => [...document.querySelectorAll("[data-chart] canvas")].map((canvas) =>
            Chart.getChart(canvas).scales.x.ticks.map((tick) => String(tick.label)).join())"""
    )
    assert len(set(time_ticks)) == 1, f"every chart labels the same times: {time_ticks}"
    walk.step("monitor-metrics")

    page.get_by_role("link", name="Logs", exact=True).click()
    rows = page.locator("[data-invocation-row]")
    expect(rows).to_have_count(len(request_ids))
    listed = [row.locator("td").nth(1).inner_text() for row in rows.all()]
    assert listed == list(reversed(request_ids)), "newest first"
    expect(rows.locator(".status")).to_have_text(["Succeeded"] * len(request_ids))
    init_durations = [row.locator("td").nth(4).inner_text() for row in rows.all()]
    assert re.fullmatch(r"\d+\.\d\d ms", init_durations[-1]), "the cold start, listed last"
    assert init_durations[:-1] == [""] * (len(request_ids) - 1), init_durations
    walk.step("monitor-logs")

    newest = rows.first
    newest.click()
    expect(newest).to_have_attribute("aria-expanded", "true")
    log_events = page.locator(f"#invocation-logs-{request_ids[-1]} pre.logs")
    expect(log_events).to_contain_text(f"value1 = {GREETING}")
    expect(log_events).to_contain_text(f"REPORT RequestId: {request_ids[-1]}")
    walk.step("monitor-log-events")


def delete_function(walk: Walkthrough) -> None:
    page = walk.page
    page.get_by_text("Actions", exact=True).click()
    page.locator(".dropdown-menu").get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog#delete-function-modal")
    expect(dialog).to_be_visible()
    delete = dialog.get_by_role("button", name="Delete")
    expect(delete).to_be_disabled()
    dialog.get_by_placeholder("confirm").fill("confirm")
    expect(delete).to_be_enabled()
    # A modal's backdrop covers the viewport only, so a full-page capture would half-dim it.
    walk.step("delete-function", full_page=False)
    delete.click()

    expect(page.locator(".flash-stack")).to_contain_text(
        f"Successfully deleted function {FUNCTION_NAME}."
    )
    expect(page.locator("h1")).to_have_text("Functions (0)")
    expect(page.locator("#function-table")).not_to_contain_text(FUNCTION_NAME)
    walk.step("function-deleted")


@pytest.fixture
def tutorial_user(db: None) -> User:
    return User.objects.create_user(username=USERNAME, password=PASSWORD)


def test_the_getting_started_tutorial(
    live_server: Any, live_worker: Any, tutorial_user: User
) -> None:
    blueprints_sync()

    with walkthrough() as walk:
        sign_in(walk, live_server.url)
        function_pk = create_from_blueprint(walk)
        function = query_database(
            lambda: Function.objects.select_related("role").get(pk=function_pk)
        )
        assert (function.owner_id, function.name) == (tutorial_user.pk, FUNCTION_NAME)
        assert function.blueprint == BLUEPRINT_SLUG
        assert function.role.name == ROLE_NAME

        save_hello_world_event(walk)
        saved = query_database(lambda: SavedTestEvent.objects.get(function_id=function_pk))
        assert (saved.name, json.loads(saved.payload)["key1"]) == (EVENT_NAME, GREETING)

        request_ids = [run_test(walk, cold=True)]
        walk.step("test-succeeded")
        for attempt in range(MORE_TESTS):
            request_ids.append(run_test(walk, cold=False))
            walk.step(f"test-again-{attempt + 1}")
        invocations = query_database(
            lambda: {
                str(invocation.request_id): invocation
                for invocation in Invocation.objects.filter(function_id=function_pk)
            }
        )
        assert sorted(invocations) == sorted(request_ids)
        assert {invocation.status for invocation in invocations.values()} == {"succeeded"}
        assert json.loads(invocations[request_ids[0]].response) == GREETING
        assert invocations[request_ids[0]].init_duration_ms is not None
        assert all(invocations[rid].init_duration_ms is None for rid in request_ids[1:])

        check_monitor(walk, request_ids)
        delete_function(walk)

    assert not Function.objects.filter(pk=function_pk).exists()
    assert not Invocation.objects.filter(request_id__in=request_ids).exists()
    assert Role.objects.filter(owner=tutorial_user, name=ROLE_NAME).exists()
    assert all(path.read_bytes().startswith(PNG_SIGNATURE) for path in walk.screenshots)
