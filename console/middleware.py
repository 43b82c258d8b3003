"""Middleware of the project's own."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, URLResolver
from django.urls.resolvers import RegexPattern

LAMBDA_API_VIEW = "lambda_api"


class LambdaApiMiddleware:
    """Answers Lambda API requests before the console's middlewares see them.

    API requests are signed with SigV4 and answered with JSON: they have no session, CSRF
    token, messages, htmx or page to protect, and running those middlewares was most of
    what the web process spent on an invoke beside the invocation itself. Only the views
    `api.views.base.endpoint` makes are served here; everything else (the code download
    links, the console pages) goes down the chain as before. Place it first.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._resolver = URLResolver(RegexPattern(r"^/"), "api.urls")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        # Lambda's paths start with the API version, a date: /2015-03-31/functions/...
        if path[1:5].isdigit():
            try:
                match = self._resolver.resolve(path)
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, LAMBDA_API_VIEW, False):
                # What the skipped CommonMiddleware would have checked: ALLOWED_HOSTS.
                request.get_host()
                request.resolver_match = match
                response: HttpResponse = match.func(request, *match.args, **match.kwargs)
                return response
        return self.get_response(request)
