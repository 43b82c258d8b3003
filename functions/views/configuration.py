"""Saves from the Configuration tab. Each one redirects back to its section with a flash, or
shows the section's form again with the service's messages at their fields."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from functions import services
from functions.configuration_tab import section_context, section_url
from functions.forms import (
    GENERAL_CONFIGURATION_ERROR_FIELDS,
    EnvironmentForm,
    ExecutionRoleForm,
    GeneralConfigurationForm,
    add_service_errors,
)
from functions.models import Function
from functions.selectors import function_get_for_user
from functions.views.detail import render_function_page
from functions.views.http import AuthenticatedHttpRequest

ADD_ROW_ACTION = "add-row"


def _saved(request: AuthenticatedHttpRequest, function: Function, section: str) -> HttpResponse:
    messages.success(request, f"Successfully updated the function {function.name}.")
    return redirect(section_url(function, section))


def _show_again(
    request: AuthenticatedHttpRequest,
    function: Function,
    section: str,
    overrides: dict[str, Any],
    *,
    status: int = 400,
) -> HttpResponse:
    context = section_context(function, section=section, editing=True)
    context.update(overrides)
    return render_function_page(
        request, function, tab="configuration", tab_overrides=context, status=status
    )


@require_POST
def configuration_general(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = GeneralConfigurationForm(request.POST)
    if form.is_valid():
        try:
            function = services.function_update_configuration(function=function, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc, field_map=GENERAL_CONFIGURATION_ERROR_FIELDS)
        else:
            return _saved(request, function, "general")
    return _show_again(request, function, "general", {"general_form": form})


@require_POST
def configuration_environment(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = EnvironmentForm.from_post(request.POST)
    if request.POST.get("action") == ADD_ROW_ACTION:
        # Without JavaScript, "Add environment variable" posts the table back with one
        # more blank row; nothing is saved.
        blank_rows = sum(1 for row in form.rows if row.is_blank) + 1
        overrides = {
            "environment_form": form,
            "environment_rows": form.rows_for_editing(blank_rows),
        }
        return _show_again(request, function, "environment", overrides, status=200)
    if form.is_valid():
        try:
            function = services.function_update_configuration(
                function=function, environment=form.variables()
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _saved(request, function, "environment")
    overrides = {"environment_form": form, "environment_rows": form.rows_for_editing()}
    return _show_again(request, function, "environment", overrides)


@require_POST
def configuration_role(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = ExecutionRoleForm(request.POST, owner=function.owner)
    if form.is_valid():
        try:
            function = services.function_update_configuration(
                function=function, role=form.cleaned_data["role"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _saved(request, function, "role")
    return _show_again(request, function, "role", {"role_form": form})
