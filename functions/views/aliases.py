from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from functions.alias_forms import AliasForm
from functions.alias_services import (
    function_alias_create,
    function_alias_delete,
    function_alias_update,
)
from functions.aliases_tab import published_versions
from functions.models import Function, FunctionAlias
from functions.selectors import function_alias_get, function_get_for_user
from functions.views.detail import render_function_page
from functions.views.http import AuthenticatedHttpRequest


def _aliases_tab(function: Function) -> HttpResponse:
    return redirect(f"{reverse('functions:detail', args=[function.pk])}?tab=aliases")


def _alias_or_404(function: Function, name: str) -> FunctionAlias:
    alias = function_alias_get(function=function, name=name)
    if alias is None:
        raise Http404("Alias not found")
    return alias


def _add_errors(form: AliasForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _submit(
    request: AuthenticatedHttpRequest,
    function: Function,
    form: AliasForm,
    save: Callable[[dict[str, Any]], str],
    *,
    error_overrides: dict[str, Any],
) -> HttpResponse:
    """Validate the form, call `save` (which returns the success message), and show the
    dialog again with the errors at its fields when anything is wrong."""
    if form.is_valid():
        try:
            message = save(form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, message)
            return _aliases_tab(function)
    return render_function_page(
        request, function, tab="aliases", tab_overrides=error_overrides, status=400
    )


@require_POST
def alias_create(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = AliasForm(request.POST, versions=published_versions(function))

    def save(data: dict[str, Any]) -> str:
        alias = function_alias_create(
            function=function,
            name=data["name"],
            function_version=data["function_version"],
            description=data["description"],
            routing=form.routing(),
        )
        return f"Successfully created alias {alias.name}."

    return _submit(
        request,
        function,
        form,
        save,
        error_overrides={"alias_create_form": form, "alias_create_open": True},
    )


@require_POST
def alias_update(request: AuthenticatedHttpRequest, pk: int, name: str) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    alias = _alias_or_404(function, name)
    form = AliasForm(request.POST, versions=published_versions(function), editing=True)

    def save(data: dict[str, Any]) -> str:
        function_alias_update(
            alias=alias,
            function_version=data["function_version"],
            description=data["description"],
            routing=form.routing(),
        )
        return f"Successfully updated alias {alias.name}."

    return _submit(
        request,
        function,
        form,
        save,
        error_overrides={"alias_editing": alias, "alias_edit_form": form},
    )


@require_POST
def alias_delete(request: AuthenticatedHttpRequest, pk: int, name: str) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    alias = _alias_or_404(function, name)
    function_alias_delete(alias=alias)
    messages.success(request, f"Deleted alias {alias.name}.")
    return _aliases_tab(function)
