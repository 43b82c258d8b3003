"""Writes to functions and roles. Every service validates everything first and writes in
one transaction, so a failure leaves nothing half-created."""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from functions import packaging, validation
from functions.destinations import validate_dead_letter_target
from functions.models import (
    Blueprint,
    CodeArtifact,
    Function,
    FunctionAlias,
    FunctionVersion,
    Role,
)

DEFAULT_HANDLER = "lambda_function.lambda_handler"
DEFAULT_PYTHON_CODE = """import json


def lambda_handler(event, context):
    return {
        'statusCode': 200,
        'body': json.dumps('Hello from Lambda!')
    }
"""

POLICY_TEMPLATES: list[tuple[str, str]] = [
    ("basic-execution", "Basic Lambda permissions (write logs)"),
    ("simple-microservice", "Simple microservice permissions"),
    ("s3-object-read-only", "Amazon S3 object read-only permissions"),
    ("sqs-poller", "Amazon SQS poller permissions"),
    ("sns-publish", "Amazon SNS publish policy"),
    ("dynamodb-crud", "Simple microservice permissions (DynamoDB)"),
    ("basic-edge", "Basic Lambda@Edge permissions (for CloudFront trigger)"),
]
_POLICY_TEMPLATE_IDS = {template_id for template_id, _ in POLICY_TEMPLATES}

_CONFIG_VALIDATORS: dict[str, Callable[[Any], None]] = {
    "description": validation.validate_description,
    "memory_size": validation.validate_memory_size,
    "timeout": validation.validate_timeout,
    "ephemeral_storage": validation.validate_ephemeral_storage,
    "environment": validation.validate_environment,
    "runtime": validation.validate_runtime,
    "handler": validation.validate_handler,
    "dead_letter_target_arn": validate_dead_letter_target,
}


def _collect_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field, value in values.items():
        validator = _CONFIG_VALIDATORS.get(field)
        if validator is None:
            continue
        try:
            validator(value)
        except ValidationError as exc:
            errors[field] = list(exc.messages)
    return errors


def role_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    policy_templates: list[str] | None = None,
    description: str = "",
) -> Role:
    templates = list(policy_templates or [])
    try:
        validation.validate_role_name(name)
    except ValidationError as exc:
        raise ValidationError({"role_name": exc.messages}) from exc
    unknown = [template for template in templates if template not in _POLICY_TEMPLATE_IDS]
    if unknown:
        raise ValidationError({"policy_templates": [f"Unknown policy templates: {unknown}."]})
    if Role.objects.filter(owner_id=owner.pk, name=name).exists():
        raise ValidationError({"role_name": [f"A role named {name} already exists."]})
    try:
        with transaction.atomic():
            return Role.objects.create(
                owner_id=owner.pk,
                name=name,
                policy_templates=templates or ["basic-execution"],
                description=description,
            )
    except IntegrityError as exc:
        raise ValidationError({"role_name": [f"A role named {name} already exists."]}) from exc


def role_create_basic(*, owner: AbstractBaseUser, function_name: str) -> Role:
    """The console's default: a new role with basic permissions, named after the function."""
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(8))
    # Role names max out at 64 characters; keep the suffix that makes them unique.
    name = f"{function_name[:50]}-role-{suffix}"
    return role_create(
        owner=owner,
        name=name,
        policy_templates=["basic-execution"],
        description=f"Execution role created for {function_name}",
    )


def function_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    role: Role | None,
    runtime: str = "python3.11",
    architecture: str = "x86_64",
    handler: str = DEFAULT_HANDLER,
    files: dict[str, str] | None = None,
    zip_bytes: bytes | None = None,
    blueprint: Blueprint | None = None,
    description: str = "",
    memory_size: int = 128,
    timeout: int = 3,
    ephemeral_storage: int = 512,
    environment: dict[str, str] | None = None,
    dead_letter_target_arn: str = "",
) -> Function:
    """Create a function. `role=None` creates a new basic execution role for it."""
    environment = dict(environment or {})
    if blueprint is not None and files is None and zip_bytes is None:
        files = dict(blueprint.files)
        handler = blueprint.handler
    errors = _collect_errors(
        {
            "description": description,
            "memory_size": memory_size,
            "timeout": timeout,
            "ephemeral_storage": ephemeral_storage,
            "environment": environment,
            "runtime": runtime,
            "handler": handler,
            "dead_letter_target_arn": dead_letter_target_arn,
        }
    )
    try:
        validation.validate_function_name(name)
    except ValidationError as exc:
        errors["name"] = list(exc.messages)
    else:
        if Function.objects.filter(owner_id=owner.pk, name=name).exists():
            errors["name"] = [f"A function named {name} already exists."]
    if architecture not in {"x86_64", "arm64"}:
        errors["architecture"] = ["Architecture must be x86_64 or arm64."]
    if role is not None and role.owner_id != owner.pk:
        errors["role"] = ["The execution role does not belong to you."]
    if errors:
        raise ValidationError(errors)
    if zip_bytes is None:
        zip_bytes = packaging.build_zip(files or {"lambda_function.py": DEFAULT_PYTHON_CODE})
    try:
        with transaction.atomic():
            artifact = _store_package(zip_bytes)
            if role is None:
                role = role_create_basic(owner=owner, function_name=name)
            return Function.objects.create(
                owner_id=owner.pk,
                name=name,
                description=description,
                runtime=runtime,
                architecture=architecture,
                handler=handler,
                role=role,
                memory_size=memory_size,
                timeout=timeout,
                ephemeral_storage=ephemeral_storage,
                environment=environment,
                dead_letter_target_arn=dead_letter_target_arn,
                code=artifact,
                code_sha256=packaging.digest(zip_bytes).code_sha256,
                code_size=artifact.size,
                blueprint=blueprint.slug if blueprint else "",
                last_modified=timezone.now(),
            )
    except IntegrityError as exc:
        raise ValidationError({"name": [f"A function named {name} already exists."]}) from exc


def _store_package(zip_bytes: bytes) -> CodeArtifact:
    """Store the package and lock its row until the transaction ends, so that a concurrent
    clean-up cannot delete it before a function points at it."""
    try:
        artifact = packaging.store(zip_bytes)
        if not CodeArtifact.objects.select_for_update().filter(pk=artifact.pk).exists():
            artifact = packaging.store(zip_bytes)
    except ValidationError as exc:
        raise ValidationError({"code": exc.messages}) from exc
    return artifact


def function_deploy_code(
    *, function: Function, files: dict[str, str] | None = None, zip_bytes: bytes | None = None
) -> Function:
    """Point $LATEST at a new package built from `files` (or given as a ZIP)."""
    if zip_bytes is None:
        try:
            zip_bytes = packaging.build_zip(files or {})
        except ValidationError as exc:
            raise ValidationError({"code": exc.messages}) from exc
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=function.pk)
        previous = locked.code_id
        artifact = _store_package(zip_bytes)
        locked.code = artifact
        locked.code_sha256 = packaging.digest(zip_bytes).code_sha256
        locked.code_size = artifact.size
        locked.last_modified = timezone.now()
        locked.revision_id = uuid.uuid4()
        locked.save()
        if previous != artifact.pk:
            _delete_if_unused(previous)
    return locked


def function_update_configuration(*, function: Function, **changes: Any) -> Function:
    """Change $LATEST's configuration. Unknown fields are a programming error."""
    allowed = set(_CONFIG_VALIDATORS) | {"role"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"Not configurable: {sorted(unknown)}")
    errors = _collect_errors(changes)
    role = changes.get("role")
    if role is not None and role.owner_id != function.owner_id:
        errors["role"] = ["The execution role does not belong to the function's owner."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=function.pk)
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.last_modified = timezone.now()
        locked.revision_id = uuid.uuid4()
        locked.save()
    return locked


def function_delete(*, function: Function) -> None:
    """Delete the function, its versions, test events and invocation records. Its log group
    stays, as Lambda's does."""
    with transaction.atomic():
        packages = {function.code_id}
        packages.update(function.versions.values_list("code_id", flat=True))
        function.delete()
        for package in sorted(packages):
            _delete_if_unused(package)


class RevisionMismatch(Exception):
    """The caller named a RevisionId that is not the function's current one."""


# What makes two versions the same, as far as publishing is concerned (not the description).
_VERSIONED_FIELDS = (
    "code_id",
    "code_sha256",
    "code_size",
    "runtime",
    "handler",
    "architecture",
    "role_id",
    "memory_size",
    "timeout",
    "ephemeral_storage",
    "environment",
)


def function_version_publish(
    *,
    function: Function,
    description: str = "",
    code_sha256: str | None = None,
    revision_id: str | None = None,
) -> FunctionVersion:
    """Publish $LATEST as a new numbered version. When neither code nor configuration changed
    since the last version, that version is returned and nothing is published, as Lambda
    does. `code_sha256` and `revision_id` are preconditions on $LATEST."""
    try:
        validation.validate_description(description)
    except ValidationError as exc:
        raise ValidationError({"description": exc.messages}) from exc
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=function.pk)
        if revision_id is not None and revision_id != str(locked.revision_id):
            raise RevisionMismatch(
                "The Revision Id provided does not match the latest Revision Id."
            )
        if code_sha256 is not None and code_sha256 != locked.code_sha256:
            raise ValidationError(
                {
                    "code_sha256": [
                        f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in "
                        f"$LATEST ({locked.code_sha256}). Please try publishing again."
                    ]
                }
            )
        last = locked.versions.order_by("-version").first()
        if last is not None and all(
            getattr(last, field) == getattr(locked, field) for field in _VERSIONED_FIELDS
        ):
            return last
        locked.last_version_number = (
            max(locked.last_version_number, last.version if last else 0) + 1
        )
        locked.save(update_fields=["last_version_number"])
        return FunctionVersion.objects.create(
            function=locked,
            version=locked.last_version_number,
            description=description,
            revision_id=uuid.uuid4(),
            created_at=timezone.now(),
            **{field: getattr(locked, field) for field in _VERSIONED_FIELDS},
        )


class VersionInUse(ValidationError):
    """A version cannot be deleted while an alias routes to it."""


def function_version_delete(*, version: FunctionVersion) -> None:
    """Delete one published version; its package goes too unless something else uses it.
    A version an alias routes to is kept (VersionInUse)."""
    with transaction.atomic():
        # The lock keeps an alias to the version from being made while it is deleted.
        Function.objects.select_for_update().filter(pk=version.function_id).first()
        number = str(version.version)
        names = sorted(
            FunctionAlias.objects.filter(function_id=version.function_id)
            .filter(Q(function_version=number) | Q(additional_version=number))
            .values_list("name", flat=True)
        )
        if names:
            raise VersionInUse(
                "Unable to delete version because the following aliases reference it: "
                f"[{', '.join(names)}]"
            )
        code = version.code_id
        qualifier_settings_delete(version.function, number)
        version.delete()
        _delete_if_unused(code)


def qualifier_settings_delete(function: Function, qualifier: str) -> None:
    """What was configured for a version or alias goes with it, as in Lambda."""
    function.event_invoke_configs.filter(qualifier=qualifier).delete()
    function.provisioned_concurrency_configs.filter(qualifier=qualifier).delete()


def _delete_if_unused(artifact_pk: str) -> None:
    """Delete a package no function or version points at any more. A row another
    transaction holds (it is about to use the package) is skipped."""
    unused = list(
        CodeArtifact.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=artifact_pk, functions__isnull=True, function_versions__isnull=True)
        .values_list("pk", flat=True)
    )
    CodeArtifact.objects.filter(pk__in=unused).delete()
