"""The function page's Code tab: the inline editor, Deploy, ZIP upload and runtime settings."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.templatetags.console_ui import human_bytes
from functions import packaging, selectors, services
from functions.forms import add_service_errors
from functions.models import Function, FunctionVersion, Runtime
from functions.views.detail import page_qualifier, render_function_page
from functions.views.http import AuthenticatedHttpRequest

UPLOAD_MAX_BYTES = packaging.MAX_ZIPPED_BYTES
_DISPLAY_TIME_FORMAT = "%B %d, %Y, %H:%M:%S (UTC)"


class CodeUploadForm(forms.Form):
    zip_file = forms.FileField(label=".zip file")

    def clean_zip_file(self) -> bytes:
        upload = self.cleaned_data["zip_file"]
        if upload.size > UPLOAD_MAX_BYTES:
            raise ValidationError(
                f"The file is {filesizeformat(upload.size)}; direct uploads are limited to "
                f"{filesizeformat(UPLOAD_MAX_BYTES)}."
            )
        return bytes(upload.read())


class RuntimeSettingsForm(forms.Form):
    runtime = forms.ChoiceField(choices=Runtime.choices)
    handler = forms.CharField(
        max_length=128,
        help_text="The file name and the function name, e.g. lambda_function.lambda_handler.",
    )

    @classmethod
    def for_function(cls, function: Function, data: Any = None) -> RuntimeSettingsForm:
        return cls(data, initial={"runtime": function.runtime, "handler": function.handler})


def too_large_message(function: Function) -> str:
    return (
        f'The deployment package of your Lambda function "{function.name}" is too large to '
        "enable inline code editing. However, you can still invoke your function."
    )


def handler_file(handler: str) -> str:
    """The file a Python handler such as `pkg/module.handler` lives in: `pkg/module.py`."""
    module = handler.rpartition(".")[0]
    return module.replace(".", "/") + ".py" if module else ""


def code_properties(function: Function | FunctionVersion) -> dict[str, Any]:
    """The package facts the tab shows, also sent back after a deploy to refresh them. A
    published version was last modified when it was published."""
    changed_at = (
        function.created_at if isinstance(function, FunctionVersion) else function.last_modified
    )
    modified = changed_at.astimezone(UTC)
    return {
        "code_sha256": function.code_sha256,
        "code_size": function.code_size,
        "code_size_display": human_bytes(function.code_size),
        "last_modified": modified.isoformat(),
        "last_modified_display": modified.strftime(_DISPLAY_TIME_FORMAT),
    }


def _code_tab_url(function: Function) -> str:
    return reverse("functions:detail", kwargs={"pk": function.pk}) + "?tab=code"


def _success_message(function: Function) -> str:
    return f"Successfully updated the function {function.name}."


def code_tab_context(request: HttpRequest, function: Function) -> dict[str, Any]:
    """What `functions/tab_code.html` needs besides `function` and `tab`. Under a version or
    alias qualifier the tab shows that version's package, read-only."""
    qualifier = page_qualifier(request, function)
    shown: Function | FunctionVersion = qualifier.shown_version or function
    files = packaging.read_text_files(bytes(shown.code.zip_bytes))
    return {
        "files": files,
        "config": shown,
        "read_only": qualifier.read_only,
        "code_editable": files is not None,
        "code_too_large_message": too_large_message(function),
        "code_handler_file": handler_file(shown.handler),
        "code_properties": code_properties(shown),
        "code_upload_form": CodeUploadForm(),
        "code_upload_max_bytes": UPLOAD_MAX_BYTES,
        "runtime_form": RuntimeSettingsForm.for_function(function),
    }


def _json_error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"message": message, **extra}, status=status)


def _files_from_payload(payload: Any) -> dict[str, str]:
    if not isinstance(payload, dict) or not isinstance(payload.get("files"), dict):
        raise ValueError('Expected a JSON object of the form {"files": {"path": "text"}}.')
    files: dict[str, Any] = payload["files"]
    for path, text in files.items():
        if not isinstance(text, str):
            raise ValueError(f"The content of {path!r} must be a string.")
    return files


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(text for texts in exc.message_dict.values() for text in texts)
    return " ".join(exc.messages)


@require_POST
def code_deploy(request: AuthenticatedHttpRequest, pk: int) -> JsonResponse:
    """Deploy the editor's complete file set, sent as `{"files": {path: text}}`. An optional
    `base_code_sha256` names the package the edits started from; if the function's code has
    changed since, nothing is deployed and the reply is 409, so no one's work is overwritten
    unknowingly."""
    function = selectors.function_get_for_user(user=request.user, pk=pk)
    try:
        body = request.body
    except RequestDataTooBig:
        limit = filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return _json_error(
            f"The files are too large to deploy from the editor (the limit is {limit}). "
            "Upload them as a .zip file instead.",
            413,
        )
    try:
        payload = json.loads(body)
    except ValueError:
        return _json_error("The request body is not valid JSON.", 400)
    try:
        files = _files_from_payload(payload)
    except ValueError as exc:
        return _json_error(str(exc), 400)
    base = payload.get("base_code_sha256")
    if isinstance(base, str) and base and base != function.code_sha256:
        return _json_error(
            f"The code of {function.name} was changed elsewhere since you opened it. Deploy "
            "again to replace it with your files, or reload the page to see the new code.",
            409,
            code_sha256=function.code_sha256,
        )
    try:
        function = services.function_deploy_code(function=function, files=files)
    except ValidationError as exc:
        return _json_error(_error_text(exc), 400)
    return JsonResponse({"message": _success_message(function), **code_properties(function)})


@require_POST
def code_upload(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Replace the package with an uploaded .zip. A rejected upload shows the page again with
    the upload dialog open and the reason in it."""
    function = selectors.function_get_for_user(user=request.user, pk=pk)
    form = CodeUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            function = services.function_deploy_code(
                function=function, zip_bytes=form.cleaned_data["zip_file"]
            )
        except ValidationError as exc:
            form.add_error("zip_file", _error_text(exc))
        else:
            messages.success(request, _success_message(function))
            return redirect(_code_tab_url(function))
    return render_function_page(
        request,
        function,
        tab="code",
        tab_overrides={"code_upload_form": form, "code_upload_open": True},
        status=400,
    )


@require_POST
def runtime_settings_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Save runtime and handler from the Edit runtime settings dialog, or show the page again
    with the dialog open and the messages at their fields."""
    function = selectors.function_get_for_user(user=request.user, pk=pk)
    form = RuntimeSettingsForm.for_function(function, request.POST)
    if form.is_valid():
        changes = {
            field: form.cleaned_data[field]
            for field in ("runtime", "handler")
            if form.cleaned_data[field] != getattr(function, field)
        }
        try:
            if changes:
                function = services.function_update_configuration(function=function, **changes)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _success_message(function))
            return redirect(_code_tab_url(function))
    return render_function_page(
        request,
        function,
        tab="code",
        tab_overrides={"runtime_form": form, "runtime_form_open": True},
        status=400,
    )
