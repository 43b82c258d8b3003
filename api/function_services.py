"""Writes the API makes to functions, on top of the function services the console uses:
roles named by ARN and RevisionId checks.

Each write holds the function's row lock (api.locks) for its whole transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from api.errors import InvalidParameterValueException, ResourceConflictException
from api.locks import function_locked
from api.names import FunctionRef, RoleRef
from api.tagging import validate_tags
from functions import packaging
from functions.models import Function, Role
from functions.services import (
    function_create,
    function_deploy_code,
    function_update_configuration,
    role_create,
)

ROLE_CANNOT_BE_ASSUMED = "The role defined for the function cannot be assumed by Lambda."


def invalid_parameters(exc: ValidationError) -> InvalidParameterValueException:
    return InvalidParameterValueException(" ".join(exc.messages))


def role_for_arn(*, owner: AbstractBaseUser, account_id: str, role: RoleRef) -> Role:
    """The owner's role the ARN names. Stratus has no IAM: a role that does not exist yet
    is created, with the path the ARN gives."""
    if role.account_id != account_id:
        raise InvalidParameterValueException(ROLE_CANNOT_BE_ASSUMED)
    existing = Role.objects.filter(owner_id=owner.pk, name=role.name).first()
    if existing is not None:
        if existing.path != role.path:
            raise InvalidParameterValueException(ROLE_CANNOT_BE_ASSUMED)
        return existing
    try:
        created = role_create(
            owner=owner,
            name=role.name,
            policy_templates=["basic-execution"],
            description="Created for a function made through the Lambda API",
        )
    except ValidationError as exc:
        raise invalid_parameters(exc) from exc
    if created.path != role.path:
        Role.objects.filter(pk=created.pk).update(path=role.path)
        created.path = role.path
    return created


def function_create_from_api(
    *,
    owner: AbstractBaseUser,
    account_id: str,
    ref: FunctionRef,
    role: RoleRef,
    zip_bytes: bytes,
    tags: dict[str, str],
    **configuration: Any,
) -> Function:
    """Create the function (and its role, if the ARN names a new one) or nothing at all."""
    validate_tags(tags)
    try:
        with transaction.atomic():
            if Function.objects.filter(owner_id=owner.pk, name=ref.name).exists():
                raise ResourceConflictException(f"Function already exist: {ref.name}")
            execution_role = role_for_arn(owner=owner, account_id=account_id, role=role)
            function = function_create(
                owner=owner,
                name=ref.name,
                role=execution_role,
                zip_bytes=zip_bytes,
                **configuration,
            )
            if tags:
                Function.objects.filter(pk=function.pk).update(tags=tags)
                function.tags = tags
    except ValidationError as exc:
        if Function.objects.filter(owner_id=owner.pk, name=ref.name).exists():
            raise ResourceConflictException(f"Function already exist: {ref.name}") from exc
        raise invalid_parameters(exc) from exc
    return function


def function_code_replace(
    *,
    function: Function,
    ref: FunctionRef,
    zip_bytes: bytes,
    revision_id: str | None = None,
    dry_run: bool = False,
) -> Function:
    """Point $LATEST at a new package. A dry run checks everything and changes nothing."""
    try:
        packaging.check_zip(zip_bytes)
    except ValidationError as exc:
        raise invalid_parameters(exc) from exc
    with function_locked(function, ref, revision_id) as locked:
        if dry_run:
            return locked
        try:
            updated = function_deploy_code(function=locked, zip_bytes=zip_bytes)
        except ValidationError as exc:
            raise invalid_parameters(exc) from exc
    updated.role = locked.role
    return updated


def function_configuration_replace(
    *,
    function: Function,
    ref: FunctionRef,
    changes: dict[str, Any],
    role: RoleRef | None = None,
    revision_id: str | None = None,
) -> Function:
    """Change the named settings of $LATEST and leave the others as they are. A role ARN
    that names a new role creates it, in the same transaction."""
    with function_locked(function, ref, revision_id) as locked:
        if role is not None:
            changes = {
                **changes,
                "role": role_for_arn(owner=locked.owner, account_id=ref.account_id, role=role),
            }
        try:
            updated = function_update_configuration(function=locked, **changes)
        except ValidationError as exc:
            raise invalid_parameters(exc) from exc
    return Function.objects.select_related("role").get(pk=updated.pk)
