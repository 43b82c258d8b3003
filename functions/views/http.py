from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthenticatedHttpRequest(HttpRequest):
    """Every console page sits behind LoginRequiredMiddleware, so its user is signed in."""

    user: User
    htmx: HtmxDetails


def wants_fragment(request: AuthenticatedHttpRequest, target: str) -> bool:
    """An htmx request that swaps only the element with id `target`. History restores ask
    for the whole page."""
    return (
        bool(request.htmx)
        and not request.htmx.history_restore_request
        and (request.htmx.target == target)
    )
