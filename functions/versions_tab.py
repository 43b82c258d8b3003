"""The Versions tab of the function page: the published versions, newest first, and a
form to publish $LATEST as a new one."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from functions.forms import VersionPublishForm
from functions.models import Function
from functions.selectors import function_version_list


def versions_tab_context(request: HttpRequest, function: Function) -> dict[str, Any]:
    return {
        "versions": list(function_version_list(function=function).order_by("-version")),
        "version_publish_form": VersionPublishForm(),
        "version_publish_open": request.GET.get("publish") == "1",
    }
