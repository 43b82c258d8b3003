"""The deployment package behind GetFunction's Code.Location."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from api.code_location import CodeLocationInvalid, code_package_for_token


@login_not_required
@require_GET
def code_package(request: HttpRequest, token: str) -> HttpResponse:
    try:
        package = code_package_for_token(token)
    except CodeLocationInvalid:
        return HttpResponse(
            "This code location is not valid or has expired. Call GetFunction for a new one.",
            status=403,
            content_type="text/plain",
        )
    response = HttpResponse(bytes(package.artifact.zip_bytes), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{package.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
