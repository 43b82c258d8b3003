"""The Aliases tab of the function page: the aliases with their versions and weights,
and the forms to create, edit and delete them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from functions.alias_forms import AliasForm
from functions.models import Function, FunctionAlias
from functions.selectors import function_alias_get, function_alias_list, function_version_list


@dataclass(frozen=True)
class AliasRow:
    alias: FunctionAlias
    primary_percent: str
    additional_percent: str


def percent(share: float) -> str:
    """A share as the console shows it: "70", "12.5"."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".")


def alias_row(alias: FunctionAlias) -> AliasRow:
    weight = alias.additional_weight if alias.is_weighted else 0.0
    return AliasRow(alias, percent(1 - weight), percent(weight))


def published_versions(function: Function) -> list[str]:
    return [str(v.version) for v in function_version_list(function=function).order_by("-version")]


def alias_edit_form(alias: FunctionAlias, versions: list[str]) -> AliasForm:
    return AliasForm(
        versions=versions,
        editing=True,
        initial={
            "description": alias.description,
            "function_version": alias.function_version,
            "additional_version": alias.additional_version,
            "weight": percent(alias.additional_weight) if alias.is_weighted else None,
        },
    )


def aliases_tab_context(request: HttpRequest, function: Function) -> dict[str, Any]:
    versions = published_versions(function)
    editing = function_alias_get(function=function, name=request.GET.get("edit", ""))
    return {
        "aliases": [alias_row(alias) for alias in function_alias_list(function=function)],
        "alias_versions": versions,
        "alias_create_form": AliasForm(versions=versions),
        "alias_create_open": request.GET.get("create") == "1",
        "alias_editing": editing,
        "alias_edit_form": alias_edit_form(editing, versions) if editing else None,
    }
