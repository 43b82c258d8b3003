"""Reads of functions, roles and blueprints, scoped to what the user may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from functions.models import Blueprint, Function, FunctionAlias, FunctionVersion, Role
from invocations.concurrency import account_concurrency_limit


def function_list_for_user(
    *, user: AbstractBaseUser | AnonymousUser, name_filter: str = ""
) -> QuerySet[Function]:
    functions = Function.objects.select_related("owner")
    if not getattr(user, "is_staff", False):
        functions = functions.filter(owner_id=user.pk)
    if name_filter:
        functions = functions.filter(name__icontains=name_filter)
    return functions.order_by("name", "owner_id")


def function_get_for_user(*, user: AbstractBaseUser | AnonymousUser, pk: int) -> Function:
    try:
        return function_list_for_user(user=user).select_related("role").get(pk=pk)
    except Function.DoesNotExist as exc:
        raise Http404("Function not found") from exc


def function_version_list(*, function: Function) -> QuerySet[FunctionVersion]:
    """The function's published versions, oldest first."""
    return FunctionVersion.objects.filter(function_id=function.pk).order_by("version")


def function_version_get(*, function: Function, version: str | int) -> FunctionVersion | None:
    """The published version numbered `version` ("3" or 3), or None if there is none."""
    number = str(version)
    # Anything that is not a plain number of sane size cannot be a version (nor overflow
    # the column when queried).
    if not (number.isascii() and number.isdigit() and len(number) <= 9):
        return None
    return (
        FunctionVersion.objects.select_related("role")
        .filter(function_id=function.pk, version=int(number))
        .first()
    )


def role_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Role]:
    return Role.objects.filter(owner_id=user.pk).order_by("name")


def blueprint_list(*, search: str = "") -> QuerySet[Blueprint]:
    blueprints = Blueprint.objects.all()
    for word in search.split():
        blueprints = blueprints.filter(
            Q(title__icontains=word)
            | Q(description__icontains=word)
            | Q(slug__icontains=word)
            | Q(runtime__icontains=word)
            | Q(tags__icontains=word)
        )
    return blueprints


def function_alias_list(
    *, function: Function, function_version: str | None = None
) -> QuerySet[FunctionAlias]:
    """The function's aliases by name; with `function_version`, only those routing to it."""
    aliases = FunctionAlias.objects.filter(function_id=function.pk).order_by("name")
    if function_version is not None:
        aliases = aliases.filter(
            Q(function_version=function_version) | Q(additional_version=function_version)
        )
    return aliases


def function_alias_get(*, function: Function, name: str) -> FunctionAlias | None:
    return FunctionAlias.objects.filter(function_id=function.pk, name=name).first()


LATEST_QUALIFIER = "$LATEST"


@dataclass(frozen=True)
class FunctionQualifier:
    """What the function page shows: $LATEST, a published version, or an alias (whose code
    and settings are those of its primary version)."""

    name: str
    version: FunctionVersion | None = None
    alias: FunctionAlias | None = None
    alias_version: FunctionVersion | None = None

    @property
    def is_latest(self) -> bool:
        return self.name == LATEST_QUALIFIER

    @property
    def read_only(self) -> bool:
        return not self.is_latest

    @property
    def label(self) -> str:
        if self.alias is not None:
            return f"Alias: {self.name}"
        if self.version is not None:
            return f"Version {self.name}"
        return LATEST_QUALIFIER

    @property
    def shown_version(self) -> FunctionVersion | None:
        """The published version whose code and settings the page shows; None for $LATEST
        (or an alias whose primary version is $LATEST)."""
        return self.version or self.alias_version


def function_qualifier_get(*, function: Function, name: str | None) -> FunctionQualifier:
    """The qualifier named `name` ($LATEST when empty); an unknown one is a 404."""
    if not name or name == LATEST_QUALIFIER:
        return FunctionQualifier(LATEST_QUALIFIER)
    version = function_version_get(function=function, version=name)
    if version is not None:
        return FunctionQualifier(name, version=version)
    alias = function_alias_get(function=function, name=name)
    if alias is None:
        raise Http404("No such version or alias")
    primary = None
    if alias.function_version != LATEST_QUALIFIER:
        primary = function_version_get(function=function, version=alias.function_version)
    return FunctionQualifier(name, alias=alias, alias_version=primary)


def function_qualifier_list(*, function: Function) -> list[FunctionQualifier]:
    """Every qualifier the page can switch to: $LATEST, versions newest first, aliases."""
    versions = function_version_list(function=function).order_by("-version")
    return [
        FunctionQualifier(LATEST_QUALIFIER),
        *(FunctionQualifier(str(v.version), version=v) for v in versions),
        *(FunctionQualifier(a.name, alias=a) for a in function_alias_list(function=function)),
    ]


@dataclass(frozen=True)
class AccountResources:
    """The account's functions, code and concurrency (the Dashboard, GetAccountSettings)."""

    function_count: int
    code_size: int
    concurrency_limit: int
    reserved_concurrency: int

    @property
    def unreserved_concurrency(self) -> int:
        return max(0, self.concurrency_limit - self.reserved_concurrency)


def account_resources(*, owner_id: int) -> AccountResources:
    usage = Function.objects.filter(owner_id=owner_id).aggregate(
        count=Count("id"), code_size=Sum("code_size"), reserved=Sum("reserved_concurrency")
    )
    return AccountResources(
        function_count=usage["count"],
        code_size=usage["code_size"] or 0,
        concurrency_limit=account_concurrency_limit(),
        reserved_concurrency=usage["reserved"] or 0,
    )
