"""The console's Access keys page: create (the secret is shown on that one response only),
deactivate, activate and delete a key, and see when each was last used."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from api.selectors import access_key_get_for_user, access_key_list_for_user
from api.services import (
    NewAccessKey,
    access_key_activate,
    access_key_create,
    access_key_deactivate,
    access_key_delete,
)
from console.selectors import account_for_user
from functions.views.http import AuthenticatedHttpRequest


def _page(
    request: AuthenticatedHttpRequest, *, new_key: NewAccessKey | None = None
) -> HttpResponse:
    context = {
        "access_keys": list(access_key_list_for_user(user=request.user)),
        "new_key": new_key,
        "account_id": account_for_user(request.user).account_id,
        "endpoint_url": request.build_absolute_uri("/").rstrip("/"),
        "region": settings.STRATUS_REGION,
    }
    return render(request, "api/access_keys.html", context)


@require_GET
def access_key_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _page(request)


@never_cache
@require_POST
def access_key_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    try:
        new_key = access_key_create(user=request.user)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("api:access_keys")
    return _page(request, new_key=new_key)


@require_POST
def access_key_deactivate_view(
    request: AuthenticatedHttpRequest, access_key_id: str
) -> HttpResponse:
    key = access_key_deactivate(
        access_key=access_key_get_for_user(user=request.user, access_key_id=access_key_id)
    )
    messages.success(request, f"Access key {key.access_key_id} is inactive.")
    return redirect("api:access_keys")


@require_POST
def access_key_activate_view(request: AuthenticatedHttpRequest, access_key_id: str) -> HttpResponse:
    key = access_key_activate(
        access_key=access_key_get_for_user(user=request.user, access_key_id=access_key_id)
    )
    messages.success(request, f"Access key {key.access_key_id} is active.")
    return redirect("api:access_keys")


@require_POST
def access_key_delete_view(request: AuthenticatedHttpRequest, access_key_id: str) -> HttpResponse:
    key = access_key_get_for_user(user=request.user, access_key_id=access_key_id)
    if request.POST.get("confirm", "").strip() != key.access_key_id:
        messages.error(request, "To delete the key, enter its access key ID.")
        return redirect("api:access_keys")
    access_key_delete(access_key=key)
    messages.success(request, f"Access key {access_key_id} was deleted.")
    return redirect("api:access_keys")
