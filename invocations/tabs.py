"""The function page's Test tab: the context `invocations/tab_test.html` needs, for the page
itself and for the fragments that htmx swaps in (the "Test event" form and the execution
result panel)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, QueryDict

from console.selectors import account_for_user
from functions.models import Blueprint, Function
from invocations import event_templates
from invocations.errors import InvocationRejected
from invocations.models import Invocation, TestEvent
from invocations.saved_events import MAX_PRIVATE_EVENTS, test_event_list_for_user

EditorMode = Literal["new", "edit"]


@dataclass
class ExecutionResult:
    """What the execution result panel shows: `status` is succeeded, failed, running (the
    wait timed out) or rejected (refused before acceptance, nothing recorded)."""

    status: Literal["succeeded", "failed", "running", "rejected"]
    request_id: str = ""
    response: str = ""
    summary: list[tuple[str, str]] = field(default_factory=list)
    log_output: str = ""
    error_code: str = ""
    error_message: str = ""


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _summary(invocation: Invocation) -> list[tuple[str, str]]:
    rows = [
        ("Executed version", invocation.executed_version),
        ("Code SHA-256", invocation.code_sha256),
        ("Request ID", str(invocation.request_id)),
    ]
    if invocation.init_duration_ms is not None:
        rows.append(("Init duration", f"{invocation.init_duration_ms:.2f} ms"))
    if invocation.duration_ms is not None:
        rows.append(("Duration", f"{invocation.duration_ms:.2f} ms"))
    if invocation.billed_duration_ms is not None:
        rows.append(("Billed duration", f"{invocation.billed_duration_ms} ms"))
    rows.append(("Resources configured", f"{invocation.memory_size} MB"))
    if invocation.max_memory_used_mb is not None:
        rows.append(("Max memory used", f"{invocation.max_memory_used_mb} MB"))
    return rows


def execution_result(*, invocation: Invocation, log_lines: list[str]) -> ExecutionResult:
    """The panel for a finished invocation and its log lines."""
    return ExecutionResult(
        status="succeeded" if invocation.status == "succeeded" else "failed",
        request_id=str(invocation.request_id),
        response=_pretty_json(invocation.response or "null"),
        summary=_summary(invocation),
        log_output="\n".join(line.rstrip("\n") for line in log_lines),
        error_code=invocation.error_type,
        error_message=invocation.error_message,
    )


def execution_running(*, invocation: Invocation) -> ExecutionResult:
    return ExecutionResult(status="running", request_id=str(invocation.request_id))


def execution_rejected(*, error: InvocationRejected) -> ExecutionResult:
    return ExecutionResult(status="rejected", error_code=error.code, error_message=error.message)


def default_template_id(function: Function) -> str:
    """The blueprint's suggested template for functions made from one, else Hello World."""
    if function.blueprint:
        suggested = (
            Blueprint.objects.filter(slug=function.blueprint)
            .values_list("test_event_template", flat=True)
            .first()
        )
        if suggested and event_templates.template_exists(suggested):
            return suggested
    return event_templates.DEFAULT_TEMPLATE_ID


def editor_context(
    *,
    user: AbstractBaseUser | AnonymousUser,
    function: Function,
    mode: EditorMode,
    event: TestEvent | None = None,
    name: str = "",
    shareable: bool | None = None,
    payload: str | None = None,
    template_id: str = "",
    errors: dict[str, list[str]] | None = None,
    notice: str = "",
    rename_name: str = "",
    rename_errors: list[str] | None = None,
) -> dict[str, Any]:
    """Everything the "Test event" form shows. In edit mode without an event, the first
    saved event is opened; with no saved events at all, the form falls back to "new"."""
    events = list(test_event_list_for_user(user=user, function=function))
    if mode == "edit" and event is None and events:
        event = events[0]
    if event is None:
        mode = "new"
    if not event_templates.template_exists(template_id):
        template_id = default_template_id(function)
    if payload is None:
        if event is not None:
            payload = event.payload
        else:
            account_id = account_for_user(user).account_id
            payload = event_templates.render_template(template_id, account_id=account_id)
    if shareable is None:
        shareable = event.shareable if event is not None else False
    private_count = sum(1 for saved in events if not saved.shareable and saved.owner_id == user.pk)
    return {
        "mode": mode,
        "event": event,
        "has_events": bool(events),
        "private_events": [saved for saved in events if not saved.shareable],
        "shareable_events": [saved for saved in events if saved.shareable],
        "name": event.name if event is not None else name,
        "sharing": "shareable" if shareable else "private",
        "can_change_sharing": event is None or event.owner_id == user.pk,
        "private_limit": MAX_PRIVATE_EVENTS,
        "private_limit_reached": private_count >= MAX_PRIVATE_EVENTS,
        "payload": payload,
        "templates": event_templates.list_templates(),
        "template_id": template_id,
        "errors": errors or {},
        "general_errors": (errors or {}).get(NON_FIELD_ERRORS, []),
        "notice": notice,
        "rename_name": rename_name or (event.name if event is not None else ""),
        "rename_errors": rename_errors or [],
    }


def editor_context_from_query(
    *, user: AbstractBaseUser | AnonymousUser, function: Function, query: QueryDict
) -> dict[str, Any]:
    """The form as `?mode=new|edit&event=<id>&template=<id>` asks for it."""
    event = None
    event_id = query.get("event", "")
    if event_id.isdigit():
        event = (
            test_event_list_for_user(user=user, function=function).filter(pk=int(event_id)).first()
        )
    mode: EditorMode = "edit" if query.get("mode") == "edit" or event is not None else "new"
    if query.get("mode") == "new":
        mode, event = "new", None
    return editor_context(
        user=user,
        function=function,
        mode=mode,
        event=event,
        template_id=query.get("template", ""),
    )


def test_tab_context(request: HttpRequest, function: Function) -> dict[str, Any]:
    """Provider for the function page's Test tab (`?tab=test`)."""
    return {
        "test_editor": editor_context_from_query(
            user=request.user, function=function, query=request.GET
        ),
        "test_result": None,
    }
