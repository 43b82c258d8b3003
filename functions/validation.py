"""Lambda's limits and naming rules, as the API and the console both enforce them."""

from __future__ import annotations

import json
import re

from django.core.exceptions import ValidationError

from functions.models import Runtime

FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HANDLER_RE = re.compile(r"^[^\s]{1,128}$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
ENV_KEY_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]+$")
MEMORY_RANGE = (128, 10240)
TIMEOUT_RANGE = (1, 900)
EPHEMERAL_STORAGE_RANGE = (512, 10240)
ENVIRONMENT_MAX_BYTES = 4096
DESCRIPTION_MAX = 256

# Lambda sets these itself; a function may not override them.
RESERVED_ENVIRONMENT_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def validate_function_name(name: str) -> None:
    if not name:
        raise ValidationError("Function name is required.", code="required")
    if len(name) > 64:
        raise ValidationError("Function name must be 64 characters or fewer.", code="max_length")
    if not FUNCTION_NAME_RE.match(name):
        raise ValidationError(
            "Function name can contain only letters, numbers, hyphens, or underscores with no "
            "spaces.",
            code="invalid",
        )


def validate_in_range(value: int, bounds: tuple[int, int], label: str, unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValidationError(
            f"{label} must be between {low} and {high} {unit}.", code="out_of_range"
        )


def validate_memory_size(value: int) -> None:
    validate_in_range(value, MEMORY_RANGE, "Memory", "MB")


def validate_timeout(value: int) -> None:
    validate_in_range(value, TIMEOUT_RANGE, "Timeout", "seconds")


def validate_ephemeral_storage(value: int) -> None:
    validate_in_range(value, EPHEMERAL_STORAGE_RANGE, "Ephemeral storage", "MB")


def validate_runtime(value: str) -> None:
    if value not in Runtime.values:
        supported = ", ".join(Runtime.values)
        raise ValidationError(
            f"Runtime {value!r} is not supported. Supported runtimes: {supported}.",
            code="invalid_runtime",
        )


def validate_handler(value: str) -> None:
    if not HANDLER_RE.match(value):
        raise ValidationError(
            "Handler must be 1 to 128 characters with no spaces, e.g. "
            "lambda_function.lambda_handler.",
            code="invalid",
        )


def validate_description(value: str) -> None:
    if len(value) > DESCRIPTION_MAX:
        raise ValidationError(
            f"Description must be {DESCRIPTION_MAX} characters or fewer.", code="max_length"
        )


def validate_role_name(value: str) -> None:
    if not ROLE_NAME_RE.match(value):
        raise ValidationError(
            "Role name must be 1 to 64 characters: letters, numbers and +=,.@-_ only.",
            code="invalid",
        )


def validate_environment(variables: dict[str, str]) -> None:
    """Lambda's rules: keys start with a letter, are at least two characters of
    [A-Za-z0-9_], are not reserved; the whole set is at most 4 KB."""
    problems = []
    for key in variables:
        if not ENV_KEY_RE.match(key):
            problems.append(
                f"{key!r} is not a valid name: names start with a letter and have at least two "
                "characters, using only letters, numbers and underscores."
            )
        elif key in RESERVED_ENVIRONMENT_KEYS:
            problems.append(f"{key!r} is reserved by Lambda and cannot be set.")
    size = len(json.dumps(variables, separators=(",", ":")).encode())
    if size > ENVIRONMENT_MAX_BYTES:
        problems.append(
            f"Environment variables total {size} bytes, over the {ENVIRONMENT_MAX_BYTES}-byte "
            "(4 KB) limit."
        )
    if problems:
        raise ValidationError(problems, code="invalid_environment")
