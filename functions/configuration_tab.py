"""The Configuration tab of the function page: General configuration, Environment variables
and Execution role, each shown read-only or, with ?edit=1, as a form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from console.selectors import account_for_user, role_arn
from functions.async_tab import ASYNC_SECTIONS, async_section_context
from functions.concurrency_tab import concurrency_section_context
from functions.forms import EnvironmentForm, ExecutionRoleForm, GeneralConfigurationForm
from functions.models import Function, FunctionVersion
from functions.selectors import FunctionQualifier
from functions.services import POLICY_TEMPLATES
from functions.validation import EPHEMERAL_STORAGE_RANGE, MEMORY_RANGE, TIMEOUT_RANGE
from functions.views.detail import page_qualifier, render_function_page
from functions.views.http import AuthenticatedHttpRequest

SECTIONS = [
    ("general", "General configuration"),
    ("environment", "Environment variables"),
    ("role", "Execution role"),
    ("concurrency", "Concurrency"),
    ("async", "Asynchronous invocation"),
    ("destinations", "Destinations"),
]
DEFAULT_SECTION = "general"
_POLICY_LABELS = dict(POLICY_TEMPLATES)


@dataclass(frozen=True)
class SectionLink:
    slug: str
    label: str
    selected: bool


def section_context(
    function: Function,
    *,
    section: str,
    editing: bool,
    blank_rows: int = 1,
    shown: FunctionVersion | None = None,
    read_only: bool = False,
) -> dict[str, Any]:
    """`shown` is the published version a version or alias page shows; `read_only` leaves
    out every way to edit."""
    if section not in dict(SECTIONS):
        section = DEFAULT_SECTION
    editing = editing and not read_only
    config: Function | FunctionVersion = shown or function
    account = account_for_user(function.owner)
    role = config.role
    context: dict[str, Any] = {
        "section": section,
        "section_label": dict(SECTIONS)[section],
        "config_sections": [SectionLink(slug, label, slug == section) for slug, label in SECTIONS],
        "editing": editing,
        "config": config,
        "read_only": read_only,
        "memory_range": MEMORY_RANGE,
        "timeout_range": TIMEOUT_RANGE,
        "ephemeral_storage_range": EPHEMERAL_STORAGE_RANGE,
        "role_arn": role_arn(account_id=account.account_id, path=role.path, role_name=role.name),
        "role_policy_labels": [_POLICY_LABELS.get(t, t) for t in role.policy_templates],
        "environment_items": sorted(config.environment.items()),
    }
    if editing and section == "general":
        context["general_form"] = GeneralConfigurationForm.for_function(function)
    elif editing and section == "environment":
        environment_form = EnvironmentForm.for_function(function)
        context["environment_form"] = environment_form
        context["environment_rows"] = environment_form.rows_for_editing(blank_rows)
    elif editing and section == "role":
        context["role_form"] = ExecutionRoleForm(
            owner=function.owner, initial={"role": function.role_id}
        )
    return context


def section_url(
    function: Function, section: str, qualifier: FunctionQualifier | None = None
) -> str:
    """The function page open at a Configuration section, under the page's qualifier."""
    params = {"tab": "configuration", "section": section}
    if qualifier is not None and not qualifier.is_latest:
        params["qualifier"] = qualifier.name
    return f"{reverse('functions:detail', kwargs={'pk': function.pk})}?{urlencode(params)}"


def qualified_section_context(
    function: Function, section: str, qualifier: FunctionQualifier
) -> dict[str, Any]:
    """A section shown again (not being edited) as the qualifier's page shows it."""
    return section_context(
        function,
        section=section,
        editing=False,
        shown=qualifier.shown_version,
        read_only=qualifier.read_only,
    )


def render_section_with_errors(
    request: AuthenticatedHttpRequest,
    function: Function,
    qualifier: FunctionQualifier,
    section: str,
    context: dict[str, Any],
) -> HttpResponse:
    """A Configuration section shown again after a failed POST (400): the section as the
    qualifier's page shows it, with `context` (its own parts and the bound form) on top."""
    return render_function_page(
        request,
        function,
        tab="configuration",
        tab_overrides={**qualified_section_context(function, section, qualifier), **context},
        status=400,
        qualifier=qualifier,
    )


def configuration_tab_context(request: HttpRequest, function: Function) -> dict[str, Any]:
    qualifier = page_qualifier(request, function)
    context = section_context(
        function,
        section=request.GET.get("section", DEFAULT_SECTION),
        editing=request.GET.get("edit") == "1",
        shown=qualifier.shown_version,
        read_only=qualifier.read_only,
    )
    if context["section"] == "concurrency":
        context.update(
            concurrency_section_context(request, function, read_only=qualifier.read_only)
        )
    if context["section"] in ASYNC_SECTIONS:
        context.update(
            async_section_context(
                request, function, section=context["section"], qualifier=qualifier
            )
        )
    return context
