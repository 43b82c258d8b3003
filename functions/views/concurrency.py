"""Saves from the Configuration tab's Concurrency section: the function's reserved
concurrency, and provisioned concurrency per version or alias."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from functions import concurrency_services
from functions.concurrency_forms import RESERVE, ProvisionedConcurrencyForm, ReservedConcurrencyForm
from functions.concurrency_tab import concurrency_context, provisioned_targets
from functions.configuration_tab import render_section_with_errors, section_url
from functions.models import Function
from functions.selectors import FunctionQualifier, function_get_for_user
from functions.views.detail import page_qualifier
from functions.views.http import AuthenticatedHttpRequest

SECTION = "concurrency"


def _show_again(
    request: AuthenticatedHttpRequest,
    function: Function,
    qualifier: FunctionQualifier,
    overrides: dict[str, Any],
) -> HttpResponse:
    context = concurrency_context(
        function, editing=False, provisioned_edit=None, read_only=qualifier.read_only
    )
    return render_section_with_errors(
        request, function, qualifier, SECTION, {**context, **overrides}
    )


@require_POST
def concurrency_reserve(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    qualifier = page_qualifier(request, function)
    form = ReservedConcurrencyForm(request.POST)
    if form.is_valid():
        try:
            if form.cleaned_data["mode"] == RESERVE:
                concurrency_services.function_reserve_concurrency(
                    function=function, reserved=form.cleaned_data["reserved"]
                )
            else:
                concurrency_services.function_unreserve_concurrency(function=function)
        except ValidationError as exc:
            form.add_error("reserved", exc.messages)
        else:
            messages.success(
                request, f"Successfully updated the concurrency of the function {function.name}."
            )
            return redirect(section_url(function, SECTION, qualifier))
    return _show_again(request, function, qualifier, {"editing": True, "reserved_form": form})


@require_POST
def provisioned_save(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    qualifier = page_qualifier(request, function)
    form = ProvisionedConcurrencyForm(request.POST, targets=provisioned_targets(function))
    if form.is_valid():
        target = form.cleaned_data["target"]
        try:
            concurrency_services.provisioned_config_put(
                function=function, qualifier=target, requested=form.cleaned_data["requested"]
            )
        except ValidationError as exc:
            form.add_error("requested", exc.messages)
        else:
            messages.success(
                request,
                f"Provisioned concurrency of {target} saved; the environments are being "
                "initialised.",
            )
            return redirect(section_url(function, SECTION, qualifier))
    editing = concurrency_services.provisioned_config_get(
        function=function, qualifier=request.POST.get("editing", "")
    )
    return _show_again(
        request,
        function,
        qualifier,
        {"provisioned_form": form, "provisioned_editing": editing},
    )


@require_POST
def provisioned_delete(request: AuthenticatedHttpRequest, pk: int, target: str) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    qualifier = page_qualifier(request, function)
    try:
        deleted = concurrency_services.provisioned_config_delete(
            function=function, qualifier=target
        )
    except ValidationError:
        deleted = False
    if deleted:
        messages.success(request, f"Provisioned concurrency of {target} removed.")
    else:
        messages.error(request, f"{target} has no provisioned concurrency.")
    return redirect(section_url(function, SECTION, qualifier))
