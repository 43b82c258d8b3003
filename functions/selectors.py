"""Reads of functions, roles and blueprints, scoped to what the user may see."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.http import Http404

from functions.models import Blueprint, Function, FunctionAlias, FunctionVersion, Role


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
