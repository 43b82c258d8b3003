from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models


class Runtime(models.TextChoices):
    PYTHON_3_11 = "python3.11", "Python 3.11"


class Architecture(models.TextChoices):
    X86_64 = "x86_64", "x86_64"
    ARM64 = "arm64", "arm64"


class FunctionState(models.TextChoices):
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"


class LastUpdateStatus(models.TextChoices):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    IN_PROGRESS = "InProgress"


class Role(models.Model):
    """An execution role: a named record a function runs as."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="roles"
    )
    name = models.CharField(max_length=64)
    path = models.CharField(max_length=512, default="/service-role/")
    policy_templates = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="role_name_per_owner")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CodeArtifact(models.Model):
    """A deployment package, stored once per content (the key is its SHA-256)."""

    sha256_hex = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    zip_bytes = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256_hex


class Function(models.Model):
    """A function's $LATEST: its configuration and the code it currently points at."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="functions"
    )
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, blank=True)
    runtime = models.CharField(max_length=32, choices=Runtime.choices, default=Runtime.PYTHON_3_11)
    handler = models.CharField(max_length=128, default="lambda_function.lambda_handler")
    architecture = models.CharField(
        max_length=16, choices=Architecture.choices, default=Architecture.X86_64
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="functions")
    memory_size = models.PositiveIntegerField(default=128)
    timeout = models.PositiveIntegerField(default=3)
    ephemeral_storage = models.PositiveIntegerField(default=512)
    environment: models.JSONField[dict[str, str], dict[str, str]] = models.JSONField(
        default=dict, blank=True
    )
    code = models.ForeignKey(CodeArtifact, on_delete=models.PROTECT, related_name="functions")
    code_sha256 = models.CharField(max_length=44)
    code_size = models.PositiveBigIntegerField()
    blueprint = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        max_length=16, choices=FunctionState.choices, default=FunctionState.ACTIVE
    )
    last_update_status = models.CharField(
        max_length=16, choices=LastUpdateStatus.choices, default=LastUpdateStatus.SUCCESSFUL
    )
    revision_id = models.UUIDField(default=uuid.uuid4)
    tags: models.JSONField[dict[str, str], dict[str, str]] = models.JSONField(
        default=dict, blank=True
    )
    # Enforced on admission (invocations.concurrency); None: the account's unreserved pool.
    reserved_concurrency = models.PositiveIntegerField(null=True, blank=True)
    # The highest version number ever published: Lambda never reuses a deleted version's.
    last_version_number = models.PositiveIntegerField(default=0)
    # DeadLetterConfig.TargetArn: where asynchronous events that failed go when no on-failure
    # destination takes them (a function ARN in Stratus; Lambda takes SQS or SNS).
    dead_letter_target_arn = models.CharField(max_length=350, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_modified = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="function_name_per_owner")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


class FunctionVersion(models.Model):
    """A published version: an immutable snapshot of the code and configuration of $LATEST
    at the moment it was published."""

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    description = models.CharField(max_length=256, blank=True)
    runtime = models.CharField(max_length=32, choices=Runtime.choices)
    handler = models.CharField(max_length=128)
    architecture = models.CharField(max_length=16, choices=Architecture.choices)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="function_versions")
    memory_size = models.PositiveIntegerField()
    timeout = models.PositiveIntegerField()
    ephemeral_storage = models.PositiveIntegerField()
    environment: models.JSONField[dict[str, str], dict[str, str]] = models.JSONField(
        default=dict, blank=True
    )
    code = models.ForeignKey(
        CodeArtifact, on_delete=models.PROTECT, related_name="function_versions"
    )
    code_sha256 = models.CharField(max_length=44)
    code_size = models.PositiveBigIntegerField()
    revision_id = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["function", "version"], name="version_per_function")
        ]
        ordering = ["function", "version"]

    def __str__(self) -> str:
        return f"{self.function_id}:{self.version}"


class Blueprint(models.Model):
    """Sample code plus a configuration preset, loaded from functions/blueprints/."""

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=128)
    description = models.TextField()
    runtime = models.CharField(max_length=32, choices=Runtime.choices)
    handler = models.CharField(max_length=128)
    tags = models.JSONField(default=list)
    files: models.JSONField[dict[str, str], dict[str, Any]] = models.JSONField(default=dict)
    test_event_template = models.CharField(max_length=64)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "title"]

    def __str__(self) -> str:
        return self.title


class FunctionAlias(models.Model):
    """A name for a version of the function, or for two with a weighted split between
    them. Versions are kept as Lambda names them: "$LATEST" or a published number."""

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=128)
    function_version = models.CharField(max_length=16)
    description = models.CharField(max_length=256, blank=True)
    additional_version = models.CharField(max_length=16, blank=True)
    additional_weight = models.FloatField(default=0.0)
    revision_id = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["function", "name"], name="alias_per_function")
        ]
        ordering = ["function", "name"]

    def __str__(self) -> str:
        return f"{self.function_id}:{self.name}"

    @property
    def is_weighted(self) -> bool:
        return bool(self.additional_version)

    @property
    def versions(self) -> list[str]:
        """The versions the alias routes to, primary first."""
        return [self.function_version, *([self.additional_version] if self.is_weighted else [])]


class ProvisionedConcurrencyStatus(models.TextChoices):
    IN_PROGRESS = "IN_PROGRESS"
    READY = "READY"
    FAILED = "FAILED"


class ProvisionedConcurrencyConfig(models.Model):
    """Initialised execution environments kept ready for a published version or an alias.
    The workers reconcile their pools with these rows and report back how many are ready."""

    function = models.ForeignKey(
        Function, on_delete=models.CASCADE, related_name="provisioned_concurrency_configs"
    )
    # A version number or an alias name; never $LATEST.
    qualifier = models.CharField(max_length=128)
    requested = models.PositiveIntegerField()
    allocated = models.PositiveIntegerField(default=0)
    available = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16,
        choices=ProvisionedConcurrencyStatus.choices,
        default=ProvisionedConcurrencyStatus.IN_PROGRESS,
    )
    status_reason = models.CharField(max_length=512, blank=True)
    last_modified = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["function", "qualifier"], name="provisioned_concurrency_per_qualifier"
            )
        ]
        ordering = ["function", "qualifier"]

    def __str__(self) -> str:
        return f"{self.function_id}:{self.qualifier}"
