"""Aliases: creating, changing and deleting them with Lambda's rules, and choosing the
version an invocation of one runs."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from typing import Final

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from console.selectors import account_for_user, function_arn
from functions import validation
from functions.models import Function, FunctionAlias, FunctionVersion
from functions.services import RevisionMismatch, qualifier_settings_delete

LATEST = "$LATEST"
ALIAS_NAME_MAX = 128
# Lambda's alias name pattern: letters, digits, hyphens and underscores, not only digits
# (a number names a version).
ALIAS_NAME_RE = re.compile(r"^(?!^[0-9]+$)([a-zA-Z0-9_-]+)$")
_VERSION_RE = re.compile(r"^[0-9]{1,9}$")
NAME_RULE = (
    "Alias names are 1 to 128 letters, digits, hyphens and underscores, and cannot be only digits."
)
WEIGHTED_LATEST = "$LATEST is not supported for an alias pointing to more than 1 version"


class AliasExists(ValidationError):
    """Another alias of the function already has the name."""


class AliasVersionNotFound(ValidationError):
    """The alias would route to a version that is not published."""


@dataclass(frozen=True)
class Routing:
    """The weighted half of an alias: `weight` (0.0 to 1.0) of invocations run
    `additional_version`, the rest run the alias's version."""

    additional_version: str
    weight: float


class _Unchanged:
    pass


UNCHANGED: Final = _Unchanged()


def alias_arn(*, function: Function, name: str) -> str:
    account_id = account_for_user(function.owner).account_id
    return function_arn(account_id=account_id, function_name=function.name, qualifier=name)


def _check_name(name: str) -> None:
    if not (1 <= len(name) <= ALIAS_NAME_MAX and ALIAS_NAME_RE.match(name)):
        raise ValidationError({"name": [NAME_RULE]})


def _checked_versions(
    function: Function, function_version: str, description: str, routing: Routing | None
) -> None:
    """Lambda's rules for what an alias points to; raises with the field at fault."""
    errors: dict[str, list[str]] = {}
    try:
        validation.validate_description(description)
    except ValidationError as exc:
        errors["description"] = exc.messages
    if function_version != LATEST and not _VERSION_RE.match(function_version):
        errors["function_version"] = ["Version must be $LATEST or a published version number."]
    if routing is not None:
        if routing.additional_version == LATEST or function_version == LATEST:
            errors.setdefault("additional_version", []).append(WEIGHTED_LATEST)
        elif not _VERSION_RE.match(routing.additional_version):
            errors["additional_version"] = ["The additional version must be a published version."]
        elif routing.additional_version == function_version:
            errors["additional_version"] = [
                "The additional version must differ from the alias's version."
            ]
        if not 0.0 <= routing.weight <= 1.0:
            errors["weight"] = ["The weight must be between 0.0 and 1.0 (0% to 100%)."]
    if errors:
        raise ValidationError(errors)
    published = {
        str(version.version): version
        for version in FunctionVersion.objects.filter(
            function_id=function.pk,
            version__in=[
                int(number)
                for number in (function_version, routing.additional_version if routing else "")
                if _VERSION_RE.match(number)
            ],
        )
    }
    missing: dict[str, list[str]] = {}
    for field, number in (
        ("function_version", function_version),
        ("additional_version", routing.additional_version if routing else LATEST),
    ):
        if number != LATEST and number not in published:
            arn = function_arn(
                account_id=account_for_user(function.owner).account_id,
                function_name=function.name,
                qualifier=number,
            )
            missing[field] = [f"Function not found: {arn}"]
    if missing:
        raise AliasVersionNotFound(missing)
    if routing is not None:
        primary, additional = published[function_version], published[routing.additional_version]
        if primary.role_id != additional.role_id:
            raise ValidationError(
                {
                    "additional_version": [
                        "Both versions of a weighted alias must have the same execution role."
                    ]
                }
            )


def function_alias_create(
    *,
    function: Function,
    name: str,
    function_version: str,
    description: str = "",
    routing: Routing | None = None,
) -> FunctionAlias:
    _check_name(name)
    with transaction.atomic():
        # Locked so that a version cannot be deleted while an alias to it is being made.
        locked = Function.objects.select_for_update().get(pk=function.pk)
        _checked_versions(locked, function_version, description, routing)
        if FunctionAlias.objects.filter(function_id=locked.pk, name=name).exists():
            raise AliasExists(
                {"name": [f"Alias already exists: {alias_arn(function=locked, name=name)}"]}
            )
        try:
            with transaction.atomic():
                return FunctionAlias.objects.create(
                    function=locked,
                    name=name,
                    function_version=function_version,
                    description=description,
                    additional_version=routing.additional_version if routing else "",
                    additional_weight=routing.weight if routing else 0.0,
                    created_at=timezone.now(),
                )
        except IntegrityError as exc:
            raise AliasExists(
                {"name": [f"Alias already exists: {alias_arn(function=locked, name=name)}"]}
            ) from exc


def function_alias_update(
    *,
    alias: FunctionAlias,
    function_version: str | None = None,
    description: str | None = None,
    routing: Routing | None | _Unchanged = UNCHANGED,
    revision_id: str | None = None,
) -> FunctionAlias:
    """Change what the alias points to; members left None (routing: UNCHANGED) stay as
    they are, and routing None makes the alias point to one version only."""
    with transaction.atomic():
        Function.objects.select_for_update().filter(pk=alias.function_id).first()
        locked = (
            FunctionAlias.objects.select_for_update().select_related("function").get(pk=alias.pk)
        )
        if revision_id is not None and revision_id != str(locked.revision_id):
            raise RevisionMismatch(
                "The Revision Id provided does not match the latest Revision Id."
            )
        if isinstance(routing, _Unchanged):
            routing = (
                Routing(locked.additional_version, locked.additional_weight)
                if locked.is_weighted
                else None
            )
        new_version = locked.function_version if function_version is None else function_version
        new_description = locked.description if description is None else description
        _checked_versions(locked.function, new_version, new_description, routing)
        locked.function_version = new_version
        locked.description = new_description
        locked.additional_version = routing.additional_version if routing else ""
        locked.additional_weight = routing.weight if routing else 0.0
        locked.revision_id = uuid.uuid4()
        locked.save()
        return locked


def function_alias_delete(*, alias: FunctionAlias) -> None:
    with transaction.atomic():
        qualifier_settings_delete(alias.function, alias.name)
        FunctionAlias.objects.filter(pk=alias.pk).delete()


def function_alias_pick_version(*, alias: FunctionAlias) -> str:
    """The version one invocation of the alias runs: the additional version with the
    routing weight's probability, else the alias's own."""
    if alias.is_weighted and random.random() < alias.additional_weight:  # noqa: S311
        return alias.additional_version
    return alias.function_version
