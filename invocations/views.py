"""The Test tab's endpoints. htmx requests get the fragment they swap in; plain form posts
(no JavaScript) get a whole page, or a redirect back to the function page after a change."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.selectors import account_for_user
from functions.models import Function
from functions.selectors import function_get_for_user
from functions.views.detail import page_qualifier, render_function_page
from functions.views.http import AuthenticatedHttpRequest
from invocations import event_templates, saved_events
from invocations.errors import InvocationLost, InvocationRejected, InvocationWaitTimeout
from invocations.forms import EventEditorForm, EventRenameForm
from invocations.models import Invocation, TestEvent
from invocations.services import invocation_log_messages, invocation_submit, invocation_wait
from invocations.tabs import (
    ExecutionResult,
    editor_context,
    editor_context_from_query,
    execution_rejected,
    execution_result,
    execution_running,
)
from monitoring.selectors import log_messages_for_invocation

HTMX_STOP_POLLING = 286


def _function_page_url(function: Function, **params: str | int) -> str:
    query = urlencode({"tab": "test", **params})
    return f"{reverse('functions:detail', args=[function.pk])}?{query}"


def _render(
    request: AuthenticatedHttpRequest,
    function: Function,
    *,
    editor: dict[str, Any] | None = None,
    result: ExecutionResult | None = None,
    status: int = 200,
) -> HttpResponse:
    """The fragment htmx asked for, or the whole function page on its Test tab for a plain
    form post."""
    if request.htmx:
        context = {"function": function, "test_editor": editor, "test_result": result}
        fragment = (
            "invocations/test_event_form.html"
            if editor is not None
            else "invocations/execution_result.html"
        )
        return render(request, fragment, context, status=status)
    overrides: dict[str, Any] = {"test_result": result}
    if editor is not None:
        overrides["test_editor"] = editor
    return render_function_page(
        request, function, tab="test", tab_overrides=overrides, status=status
    )


def _posted_event(
    request: AuthenticatedHttpRequest, function: Function, form: EventEditorForm
) -> TestEvent | None:
    event_id = form.cleaned_data.get("event")
    if event_id is None:
        return None
    return saved_events.test_event_get_for_user(user=request.user, function=function, pk=event_id)


def _posted_editor(
    request: AuthenticatedHttpRequest, function: Function, form: EventEditorForm, **extra: Any
) -> dict[str, Any]:
    """The form as it was posted, so nothing typed is lost when it comes back."""
    event = _posted_event(request, function, form)
    return editor_context(
        user=request.user,
        function=function,
        mode="edit" if event is not None else "new",
        event=event,
        name=form.cleaned_data.get("name") or "",
        shareable=form.shareable if form.cleaned_data.get("sharing") else None,
        payload=form.cleaned_data.get("payload") or "",
        template_id=request.POST.get("template", ""),
        **extra,
    )


def _editor_form(request: AuthenticatedHttpRequest) -> EventEditorForm:
    form = EventEditorForm(request.POST)
    if not form.is_valid():
        # Only a tampered event id can fail here; treat the post as a new event.
        form.cleaned_data.pop("event", None)
    return form


@require_GET
def event_template(request: AuthenticatedHttpRequest, template_id: str) -> JsonResponse:
    """A template's event, filled in for the user's account, for the template picker."""
    try:
        payload = event_templates.render_template(
            template_id, account_id=account_for_user(request.user).account_id
        )
    except event_templates.UnknownEventTemplate as exc:
        raise Http404("No such event template") from exc
    return JsonResponse({"id": template_id, "payload": payload})


@require_GET
def event_form(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The "Test event" form for `?mode=new|edit&event=<id>&template=<id>`."""
    function = function_get_for_user(user=request.user, pk=pk)
    if not request.htmx:
        params = {
            key: request.GET[key] for key in ("mode", "event", "template") if key in request.GET
        }
        return redirect(_function_page_url(function, **params))
    editor = editor_context_from_query(user=request.user, function=function, query=request.GET)
    return _render(request, function, editor=editor)


@require_POST
def save_event(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = _editor_form(request)
    event = _posted_event(request, function, form)
    shareable = form.shareable
    if event is not None and not form.cleaned_data.get("sharing"):
        shareable = event.shareable
    try:
        saved = saved_events.test_event_save(
            user=request.user,
            function=function,
            name=event.name if event is not None else form.cleaned_data.get("name") or "",
            payload=form.cleaned_data.get("payload") or "",
            shareable=shareable,
            event=event,
        )
    except ValidationError as exc:
        editor = _posted_editor(request, function, form, errors=exc.message_dict)
        return _render(request, function, editor=editor)
    notice = f"The test event {saved.name} was successfully saved."
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_function_page_url(function, event=saved.pk))
    editor = editor_context(
        user=request.user, function=function, mode="edit", event=saved, notice=notice
    )
    return _render(request, function, editor=editor)


@require_POST
def rename_event(request: AuthenticatedHttpRequest, pk: int, event_pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    event = saved_events.test_event_get_for_user(user=request.user, function=function, pk=event_pk)
    form = EventRenameForm(request.POST)
    new_name = form.cleaned_data.get("name", "") if form.is_valid() else ""
    old_name = event.name
    try:
        saved_events.test_event_rename(user=request.user, event=event, name=new_name)
    except ValidationError as exc:
        event.name = old_name
        editor = editor_context(
            user=request.user,
            function=function,
            mode="edit",
            event=event,
            rename_name=new_name,
            rename_errors=exc.message_dict.get("name", exc.messages),
        )
        return _render(request, function, editor=editor)
    notice = f"The test event {old_name} was renamed to {event.name}."
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_function_page_url(function, event=event.pk))
    editor = editor_context(
        user=request.user, function=function, mode="edit", event=event, notice=notice
    )
    return _render(request, function, editor=editor)


@require_POST
def delete_event(request: AuthenticatedHttpRequest, pk: int, event_pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    event = saved_events.test_event_get_for_user(user=request.user, function=function, pk=event_pk)
    name = event.name
    saved_events.test_event_delete(user=request.user, event=event)
    notice = f"The test event {name} was deleted."
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_function_page_url(function))
    editor = editor_context(user=request.user, function=function, mode="new", notice=notice)
    return _render(request, function, editor=editor)


@require_POST
def run_test(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Invoke the function synchronously with exactly what is in the editor, saved or not."""
    function = function_get_for_user(user=request.user, pk=pk)
    qualifier = page_qualifier(request, function)
    payload = request.POST.get("payload", "")
    result: ExecutionResult
    try:
        invocation = invocation_submit(
            function=function, payload=payload, source="console", qualifier=qualifier.name
        )
    except InvocationRejected as exc:
        result = execution_rejected(error=exc)
    else:
        try:
            invocation = invocation_wait(invocation=invocation)
        except InvocationLost as exc:
            result = execution_rejected(error=exc)
        except InvocationWaitTimeout:
            result = execution_running(invocation=invocation)
        else:
            log_lines = invocation_log_messages(invocation=invocation)
            result = execution_result(invocation=invocation, log_lines=log_lines)
    if request.htmx:
        return _render(request, function, result=result)
    editor = _posted_editor(request, function, _editor_form(request))
    return _render(request, function, editor=editor, result=result)


@require_GET
def run_result(request: AuthenticatedHttpRequest, pk: int, request_id: uuid.UUID) -> HttpResponse:
    """The panel of an invocation still running when the Test request stopped waiting;
    polled by htmx until the invocation finishes."""
    function = function_get_for_user(user=request.user, pk=pk)
    invocation = get_object_or_404(Invocation, function=function, request_id=request_id)
    if not invocation.is_terminal:
        return _render(request, function, result=execution_running(invocation=invocation))
    log_lines = log_messages_for_invocation(request_id=invocation.request_id)
    result = execution_result(invocation=invocation, log_lines=log_lines)
    return _render(
        request, function, result=result, status=HTMX_STOP_POLLING if request.htmx else 200
    )
