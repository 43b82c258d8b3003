from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.views.decorators.http import require_GET

from console.selectors import account_for_user, function_arn
from functions.aliases_tab import percent
from functions.models import Function, FunctionVersion
from functions.selectors import (
    FunctionQualifier,
    function_get_for_user,
    function_qualifier_get,
    function_qualifier_list,
)
from functions.views.http import AuthenticatedHttpRequest

TabProvider = Callable[[HttpRequest, Function], dict[str, Any]]

# (slug, label, context provider, template). Each provider lives with the app that owns the
# tab and is imported on first use, so a tab whose module is missing shows a notice instead
# of breaking the function page.
TABS = [
    ("code", "Code", "functions.code_tab.code_tab_context", "functions/tab_code.html"),
    ("test", "Test", "invocations.tabs.test_tab_context", "invocations/tab_test.html"),
    ("monitor", "Monitor", "monitoring.tabs.monitor_tab_context", "monitoring/tab_monitor.html"),
    (
        "configuration",
        "Configuration",
        "functions.configuration_tab.configuration_tab_context",
        "functions/tab_configuration.html",
    ),
    (
        "versions",
        "Versions",
        "functions.versions_tab.versions_tab_context",
        "functions/tab_versions.html",
    ),
    (
        "aliases",
        "Aliases",
        "functions.aliases_tab.aliases_tab_context",
        "functions/tab_aliases.html",
    ),
]
DEFAULT_TAB = "code"


@dataclass(frozen=True)
class TabLink:
    slug: str
    label: str
    selected: bool
    url: str = ""


@dataclass(frozen=True)
class QualifierLink:
    label: str
    url: str
    selected: bool


def page_qualifier(request: HttpRequest, function: Function) -> FunctionQualifier:
    """The qualifier the page shows: `?qualifier=` on a GET, the posted field on a POST."""
    name = request.GET.get("qualifier") or request.POST.get("qualifier")
    return function_qualifier_get(function=function, name=name)


def function_page_url(function: Function, *, tab: str, qualifier: FunctionQualifier) -> str:
    params = {"tab": tab}
    if not qualifier.is_latest:
        params["qualifier"] = qualifier.name
    return f"{reverse('functions:detail', args=[function.pk])}?{urlencode(params)}"


def qualifier_links(
    function: Function, *, tab: str, current: FunctionQualifier
) -> list[QualifierLink]:
    return [
        QualifierLink(
            q.label, function_page_url(function, tab=tab, qualifier=q), q.name == current.name
        )
        for q in function_qualifier_list(function=function)
    ]


def load_provider(dotted_path: str) -> TabProvider | None:
    """The provider function, or None while its module or function does not exist yet."""
    module_path, name = dotted_path.rsplit(".", 1)
    try:
        module = import_module(module_path)
    except ModuleNotFoundError as exc:
        # Only the tab's own module being absent means "not available"; a missing import
        # inside an existing module is a bug that should surface.
        if exc.name and (module_path == exc.name or module_path.startswith(f"{exc.name}.")):
            return None
        raise
    provider = getattr(module, name, None)
    return provider if callable(provider) else None


def template_exists(name: str) -> bool:
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return False
    return True


def selected_tab(slug: str | None) -> tuple[str, str, str, str]:
    for tab in TABS:
        if tab[0] == slug:
            return tab
    return TABS[0]


def arn_segments(arn: str) -> list[str]:
    """The ARN cut after each colon, so the page can let it wrap there and nowhere else:
    "us-east-1" or a hyphenated function name stays on one line."""
    parts = arn.split(":")
    return [f"{part}:" for part in parts[:-1]] + parts[-1:]


def render_function_page(
    request: AuthenticatedHttpRequest,
    function: Function,
    *,
    tab: str | None,
    tab_overrides: Mapping[str, Any] | None = None,
    status: int = 200,
    qualifier: FunctionQualifier | None = None,
) -> HttpResponse:
    """The function page with one tab rendered. `tab_overrides` replaces parts of the tab's
    context, e.g. a bound form with errors after a failed POST."""
    slug, label, provider_path, template_name = selected_tab(tab)
    if qualifier is None:
        qualifier = page_qualifier(request, function)
    account = account_for_user(function.owner)
    arn = function_arn(
        account_id=account.account_id,
        function_name=function.name,
        qualifier="" if qualifier.is_latest else qualifier.name,
    )
    overview: Function | FunctionVersion = qualifier.shown_version or function
    context: dict[str, Any] = {
        "function": function,
        "function_qualifier": qualifier,
        "qualifier_query": ""
        if qualifier.is_latest
        else f"&{urlencode({'qualifier': qualifier.name})}",
        "qualifier_links": qualifier_links(function, tab=slug, current=qualifier),
        "tab": slug,
        "tab_label": label,
        "function_tabs": [
            TabLink(s, lbl, s == slug, function_page_url(function, tab=s, qualifier=qualifier))
            for s, lbl, _, _ in TABS
        ],
        "function_arn": arn,
        "function_arn_segments": arn_segments(arn),
        # A version or alias page shows that version's own code and configuration.
        "overview_config": overview,
        "overview_last_modified": overview.created_at
        if isinstance(overview, FunctionVersion)
        else function.last_modified,
        "tab_template": None,
    }
    if qualifier.alias is not None:
        weight = qualifier.alias.additional_weight if qualifier.alias.is_weighted else 0.0
        context["alias_primary_percent"] = percent(1 - weight)
        context["alias_additional_percent"] = percent(weight)
    provider = load_provider(provider_path)
    if provider is not None and template_exists(template_name):
        context.update(provider(request, function))
        context.update(tab_overrides or {})
        context["function"] = function
        context["function_qualifier"] = qualifier
        context["tab"] = slug
        context["tab_template"] = template_name
    return render(request, "functions/function_detail.html", context, status=status)


@require_GET
def function_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    function = function_get_for_user(user=request.user, pk=pk)
    return render_function_page(request, function, tab=request.GET.get("tab", DEFAULT_TAB))
