"""Configuration -> Asynchronous invocation and Configuration -> Destinations: what the two
sections show for the page's qualifier ($LATEST, a version or an alias), and their forms.

Unlike the rest of a version's configuration, these settings can be changed on a version or
an alias, as on Lambda; the dead-letter target belongs to the function and is set on
$LATEST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest

from functions.async_forms import (
    CONDITION_FAILURE,
    CONDITION_SUCCESS,
    AsyncInvocationForm,
    DestinationForm,
)
from functions.destinations import parse_function_target
from functions.models import Function
from functions.selectors import FunctionQualifier
from invocations.async_config import async_policy, event_invoke_config_get

ASYNC_SECTION = "async"
DESTINATIONS_SECTION = "destinations"
ASYNC_SECTIONS = (ASYNC_SECTION, DESTINATIONS_SECTION)


@dataclass(frozen=True)
class DestinationRow:
    condition: str
    condition_label: str
    arn: str
    function_name: str


def age_label(seconds: int) -> str:
    """The console's way of showing the maximum age of event: "6h 0min 0sec"."""
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    return f"{hours}h {minutes}min {rest}sec"


def _function_name(arn: str) -> str:
    try:
        return parse_function_target(arn).name
    except ValidationError:  # a malformed stored value is shown as it is
        return arn


def destination_rows(function: Function, qualifier: str) -> list[DestinationRow]:
    config = event_invoke_config_get(function=function, qualifier=qualifier)
    if config is None:
        return []
    rows = []
    for condition, label, arn in (
        (CONDITION_SUCCESS, "On success", config.on_success),
        (CONDITION_FAILURE, "On failure", config.on_failure),
    ):
        if arn:
            rows.append(DestinationRow(condition, label, arn, _function_name(arn)))
    return rows


def async_section_context(
    request: HttpRequest, function: Function, *, section: str, qualifier: FunctionQualifier
) -> dict[str, Any]:
    """The section's context; `?edit=1` (Asynchronous invocation), `?add=1` or
    `?condition=success|failure` (Destinations) open its form."""
    policy = async_policy(function_id=function.pk, qualifier=qualifier.name)
    context: dict[str, Any] = {
        "async_qualifier": qualifier.name,
        "async_policy": policy,
        "async_age_label": age_label(policy.maximum_event_age_in_seconds),
        "dead_letter_name": _function_name(policy.dead_letter_target)
        if policy.dead_letter_target
        else "",
        "destination_rows": destination_rows(function, qualifier.name),
    }
    if section == ASYNC_SECTION and request.GET.get("edit") == "1":
        context["async_form"] = AsyncInvocationForm(
            function=function,
            initial=AsyncInvocationForm.initial_for(
                function=function,
                retries=policy.maximum_retry_attempts,
                age=policy.maximum_event_age_in_seconds,
            ),
        )
    if section == DESTINATIONS_SECTION:
        condition = request.GET.get("condition")
        if request.GET.get("add") == "1" or condition in (CONDITION_SUCCESS, CONDITION_FAILURE):
            current = policy.on_success if condition == CONDITION_SUCCESS else policy.on_failure
            context["destination_form"] = DestinationForm(
                function=function,
                initial={
                    "condition": condition or CONDITION_FAILURE,
                    "destination": current if condition else "",
                },
            )
            context["destination_editing"] = condition or ""
    return context
