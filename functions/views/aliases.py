from __future__ import annotations

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


@require_POST
def alias_create(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = AliasForm(request.POST, versions=published_versions(function))
    if form.is_valid():
        try:
            alias = function_alias_create(
                function=function,
                name=form.cleaned_data["name"],
                function_version=form.cleaned_data["function_version"],
                description=form.cleaned_data["description"],
                routing=form.routing(),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Successfully created alias {alias.name}.")
            return _aliases_tab(function)
    return render_function_page(
        request,
        function,
        tab="aliases",
        tab_overrides={"alias_create_form": form, "alias_create_open": True},
        status=400,
    )


@require_POST
def alias_update(request: AuthenticatedHttpRequest, pk: int, name: str) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    alias = _alias_or_404(function, name)
    form = AliasForm(request.POST, versions=published_versions(function), editing=True)
    if form.is_valid():
        try:
            function_alias_update(
                alias=alias,
                function_version=form.cleaned_data["function_version"],
                description=form.cleaned_data["description"],
                routing=form.routing(),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Successfully updated alias {alias.name}.")
            return _aliases_tab(function)
    return render_function_page(
        request,
        function,
        tab="aliases",
        tab_overrides={"alias_editing": alias, "alias_edit_form": form},
        status=400,
    )


@require_POST
def alias_delete(request: AuthenticatedHttpRequest, pk: int, name: str) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    alias = _alias_or_404(function, name)
    function_alias_delete(alias=alias)
    messages.success(request, f"Deleted alias {alias.name}.")
    return _aliases_tab(function)
