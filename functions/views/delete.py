from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from functions import services
from functions.forms import FunctionDeleteForm
from functions.selectors import function_get_for_user
from functions.views.http import AuthenticatedHttpRequest


@require_POST
def function_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = FunctionDeleteForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("confirm", []):
            messages.error(request, str(error))
        return redirect("functions:detail", pk=function.pk)
    name = function.name
    services.function_delete(function=function)
    messages.success(request, f"Successfully deleted function {name}.")
    return redirect("functions:list")
