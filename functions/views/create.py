from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from functions.forms import (
    FUNCTION_CREATE_ERROR_FIELDS,
    MODE_BLUEPRINT,
    MODE_SCRATCH,
    FunctionCreateForm,
    add_service_errors,
)
from functions.selectors import blueprint_list
from functions.views.http import AuthenticatedHttpRequest, wants_fragment

CREATED_MESSAGE = (
    "Successfully created the function {name}. You can now change its code and configuration. "
    'To invoke your function with a test event, choose "Test".'
)


@require_http_methods(["GET", "POST"])
def function_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _create_page(request, default_mode=MODE_SCRATCH)


@require_http_methods(["GET", "POST"])
def blueprint_gallery(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _create_page(request, default_mode=MODE_BLUEPRINT)


def _create_page(request: AuthenticatedHttpRequest, *, default_mode: str) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    if request.method == "POST":
        form = FunctionCreateForm(request.POST, owner=request.user)
        if form.is_valid():
            try:
                function = form.create()
            except ValidationError as exc:
                add_service_errors(form, exc, field_map=FUNCTION_CREATE_ERROR_FIELDS)
            else:
                messages.success(request, CREATED_MESSAGE.format(name=function.name))
                return redirect("functions:detail", pk=function.pk)
    else:
        mode = MODE_BLUEPRINT if request.GET.get("mode") == MODE_BLUEPRINT else default_mode
        form = FunctionCreateForm(
            owner=request.user,
            initial={"mode": mode, "blueprint": request.GET.get("blueprint", "")},
        )
    context = {
        "form": form,
        "blueprints": blueprint_list(search=search),
        "search": search,
        "has_roles": form.existing_roles.exists(),
    }
    if wants_fragment(request, "blueprint-results"):
        return render(request, "functions/function_create.html#blueprint-results", context)
    status = 400 if form.is_bound else 200
    return render(request, "functions/function_create.html", context, status=status)
