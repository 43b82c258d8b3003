"""Saves from Configuration -> Asynchronous invocation and Configuration -> Destinations.
Each redirects back to its section with a flash, or shows the form again, as it was filled
in, with the messages at their fields."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from functions.async_forms import (
    ASYNC_ERROR_FIELDS,
    CONDITION_FAILURE,
    CONDITION_SUCCESS,
    DESTINATION_ERROR_FIELDS,
    AsyncInvocationForm,
    DestinationForm,
)
from functions.async_tab import async_section_context
from functions.configuration_tab import render_section_with_errors, section_url
from functions.forms import add_service_errors
from functions.models import Function
from functions.selectors import FunctionQualifier, function_get_for_user
from functions.views.detail import page_qualifier
from functions.views.http import AuthenticatedHttpRequest
from invocations.async_config import async_settings_save, destination_remove, destination_set


def _show_again(
    request: AuthenticatedHttpRequest,
    function: Function,
    qualifier: FunctionQualifier,
    section: str,
    overrides: dict[str, Any],
) -> HttpResponse:
    context = async_section_context(request, function, section=section, qualifier=qualifier)
    return render_section_with_errors(
        request, function, qualifier, section, {**context, **overrides}
    )


@require_POST
def async_configuration_save(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    qualifier = page_qualifier(request, function)
    form = AsyncInvocationForm(request.POST, function=function)
    if form.is_valid():
        try:
            async_settings_save(
                function=function,
                qualifier=qualifier.name,
                maximum_retry_attempts=form.cleaned_data["retry_attempts"],
                maximum_event_age_in_seconds=form.maximum_event_age(),
                # The dead-letter target belongs to the function: set on $LATEST only.
                dead_letter_target_arn=form.cleaned_data["dead_letter_function"] or ""
                if qualifier.is_latest
                else None,
            )
        except ValidationError as exc:
            add_service_errors(form, exc, field_map=ASYNC_ERROR_FIELDS)
        else:
            messages.success(
                request, f"Successfully updated the asynchronous configuration of {function.name}."
            )
            return redirect(section_url(function, "async", qualifier))
    return _show_again(request, function, qualifier, "async", {"async_form": form})


@require_POST
def destination_save(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    qualifier = page_qualifier(request, function)
    form = DestinationForm(request.POST, function=function)
    if form.is_valid():
        try:
            destination_set(
                function=function,
                qualifier=qualifier.name,
                condition=form.cleaned_data["condition"],
                destination=form.cleaned_data["destination"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc, field_map=DESTINATION_ERROR_FIELDS)
        else:
            messages.success(request, f"Successfully saved the destination of {function.name}.")
            return redirect(section_url(function, "destinations", qualifier))
    overrides = {"destination_form": form, "destination_editing": ""}
    return _show_again(request, function, qualifier, "destinations", overrides)


@require_POST
def destination_remove_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    qualifier = page_qualifier(request, function)
    condition = request.POST.get("condition")
    if condition in (CONDITION_SUCCESS, CONDITION_FAILURE):
        destination_remove(function=function, qualifier=qualifier.name, condition=condition)
        messages.success(request, f"Successfully removed the destination of {function.name}.")
    return redirect(section_url(function, "destinations", qualifier))
