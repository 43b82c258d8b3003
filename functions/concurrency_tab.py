"""The Configuration tab's Concurrency section: the account's concurrency, this function's
reservation (edited on $LATEST only: it applies to the whole function) and its provisioned
concurrency per version or alias."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from functions.concurrency_forms import (
    RESERVE,
    USE_UNRESERVED,
    ProvisionedConcurrencyForm,
    ReservedConcurrencyForm,
)
from functions.concurrency_services import (
    MIN_UNRESERVED_CONCURRENCY,
    account_concurrency,
    max_reservable,
    provisioned_config_list,
)
from functions.models import Function, ProvisionedConcurrencyConfig
from functions.selectors import function_alias_list, function_version_list
from invocations.concurrency import in_flight

ADD = "add"


@dataclass(frozen=True)
class ProvisionedRow:
    config: ProvisionedConcurrencyConfig
    kind: str

    @property
    def qualifier(self) -> str:
        return self.config.qualifier


def provisioned_targets(function: Function) -> list[tuple[str, str]]:
    """Versions (newest first) and aliases, as the form's choices."""
    versions = function_version_list(function=function).order_by("-version")
    return [
        *((str(v.version), f"Version {v.version}") for v in versions),
        *((a.name, f"Alias: {a.name}") for a in function_alias_list(function=function)),
    ]


def concurrency_context(
    function: Function,
    *,
    editing: bool,
    provisioned_edit: str | None,
    read_only: bool,
) -> dict[str, Any]:
    account = account_concurrency(owner_id=function.owner_id)
    running, _ = in_flight(function_id=function.pk, owner_id=function.owner_id)
    configs = provisioned_config_list(function=function)
    context: dict[str, Any] = {
        "concurrency_account": account,
        "concurrency_reserved": function.reserved_concurrency,
        "concurrency_max_reservable": max_reservable(function=function),
        "concurrency_min_unreserved": MIN_UNRESERVED_CONCURRENCY,
        "concurrency_in_flight": running,
        "concurrency_can_reserve": not read_only,
        "provisioned_rows": [
            ProvisionedRow(c, "Version" if c.qualifier.isdigit() else "Alias") for c in configs
        ],
        "provisioned_has_targets": bool(provisioned_targets(function)),
    }
    if editing and not read_only:
        reserved = function.reserved_concurrency
        context["reserved_form"] = ReservedConcurrencyForm(
            initial={
                "mode": USE_UNRESERVED if reserved is None else RESERVE,
                "reserved": reserved,
            }
        )
    if provisioned_edit:
        existing = next((c for c in configs if c.qualifier == provisioned_edit), None)
        context["provisioned_form"] = ProvisionedConcurrencyForm(
            targets=provisioned_targets(function),
            initial={
                "target": existing.qualifier if existing else "",
                "requested": existing.requested if existing else None,
            },
        )
        context["provisioned_editing"] = existing
    return context


def concurrency_section_context(
    request: HttpRequest, function: Function, *, read_only: bool
) -> dict[str, Any]:
    return concurrency_context(
        function,
        editing=request.GET.get("edit") == "1",
        provisioned_edit=request.GET.get("provisioned") or None,
        read_only=read_only,
    )
