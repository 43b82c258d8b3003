from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from functions import services
from functions.forms import VersionPublishForm
from functions.selectors import function_get_for_user
from functions.views.detail import render_function_page
from functions.views.http import AuthenticatedHttpRequest


@require_POST
def version_publish(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    form = VersionPublishForm(request.POST)
    if form.is_valid():
        last_number = function.last_version_number
        try:
            version = services.function_version_publish(
                function=function, description=form.cleaned_data["description"]
            )
        except ValidationError as exc:
            form.add_error("description", exc.messages)
        else:
            if version.version > last_number:
                messages.success(
                    request, f"Successfully published version {version.version} of {function.name}."
                )
            else:
                messages.info(
                    request,
                    f"Nothing changed since version {version.version}, so no new version "
                    "was published.",
                )
            return redirect(f"{reverse('functions:detail', args=[function.pk])}?tab=versions")
    return render_function_page(
        request,
        function,
        tab="versions",
        tab_overrides={"version_publish_form": form, "version_publish_open": True},
        status=400,
    )
