"""Functions as the Lambda API describes them (FunctionConfiguration and friends)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.names import LATEST
from console.selectors import function_arn, role_arn
from functions.models import Function, FunctionState, FunctionVersion, LastUpdateStatus

# Why a function is not Active, as Lambda reports it.
_STATE_REASONS: dict[str, tuple[str, str]] = {
    FunctionState.PENDING: ("The function is being created.", "Creating"),
    FunctionState.INACTIVE: (
        "The function is inactive and must be invoked to become active again.",
        "Idle",
    ),
    FunctionState.FAILED: ("The function could not be prepared to run.", "InternalError"),
}


def lambda_timestamp(moment: datetime) -> str:
    """Lambda's LastModified format: 2019-08-14T22:26:11.234+0000."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+0000"


def function_configuration(
    function: Function,
    *,
    account_id: str,
    qualifier: str | None = None,
    full: bool = True,
    code_sha256: str | None = None,
    code_size: int | None = None,
) -> dict[str, Any]:
    """The FunctionConfiguration of $LATEST. `full=False` leaves out the state fields, as
    ListFunctions does. `code_sha256`/`code_size` describe a package not deployed yet (a dry
    run)."""
    role = function.role
    configuration: dict[str, Any] = {
        "FunctionName": function.name,
        "FunctionArn": function_arn(
            account_id=account_id, function_name=function.name, qualifier=qualifier
        ),
        "Runtime": function.runtime,
        "Role": role_arn(account_id=account_id, path=role.path, role_name=role.name),
        "Handler": function.handler,
        "CodeSize": function.code_size if code_size is None else code_size,
        "Description": function.description,
        "Timeout": function.timeout,
        "MemorySize": function.memory_size,
        "LastModified": lambda_timestamp(function.last_modified),
        "CodeSha256": code_sha256 or function.code_sha256,
        "Version": LATEST,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": str(function.revision_id),
        "PackageType": "Zip",
        "Architectures": [function.architecture],
        "EphemeralStorage": {"Size": function.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": function.log_group_name},
    }
    if function.environment:
        configuration["Environment"] = {"Variables": dict(function.environment)}
    if function.dead_letter_target_arn:
        configuration["DeadLetterConfig"] = {"TargetArn": function.dead_letter_target_arn}
    if full:
        configuration["State"] = function.state
        if function.state in _STATE_REASONS:
            reason, code = _STATE_REASONS[function.state]
            configuration["StateReason"] = reason
            configuration["StateReasonCode"] = code
        configuration["LastUpdateStatus"] = function.last_update_status
        if function.last_update_status == LastUpdateStatus.IN_PROGRESS:
            configuration["LastUpdateStatusReason"] = "The function is being updated."
    return configuration


def version_configuration(
    version: FunctionVersion, *, account_id: str, full: bool = True
) -> dict[str, Any]:
    """The FunctionConfiguration of a published version: its own code and settings. A
    version never changes, so it is always Active and its last update Successful."""
    function = version.function
    role = version.role
    configuration: dict[str, Any] = {
        "FunctionName": function.name,
        "FunctionArn": function_arn(
            account_id=account_id, function_name=function.name, qualifier=str(version.version)
        ),
        "Runtime": version.runtime,
        "Role": role_arn(account_id=account_id, path=role.path, role_name=role.name),
        "Handler": version.handler,
        "CodeSize": version.code_size,
        "Description": version.description,
        "Timeout": version.timeout,
        "MemorySize": version.memory_size,
        "LastModified": lambda_timestamp(version.created_at),
        "CodeSha256": version.code_sha256,
        "Version": str(version.version),
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": str(version.revision_id),
        "PackageType": "Zip",
        "Architectures": [version.architecture],
        "EphemeralStorage": {"Size": version.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": function.log_group_name},
    }
    if version.environment:
        configuration["Environment"] = {"Variables": dict(version.environment)}
    if function.dead_letter_target_arn:
        # Stratus keeps one dead-letter target per function, for all its versions.
        configuration["DeadLetterConfig"] = {"TargetArn": function.dead_letter_target_arn}
    if full:
        configuration["State"] = FunctionState.ACTIVE
        configuration["LastUpdateStatus"] = LastUpdateStatus.SUCCESSFUL
    return configuration


def concurrency(function: Function) -> dict[str, int]:
    if function.reserved_concurrency is None:
        return {}
    return {"ReservedConcurrentExecutions": function.reserved_concurrency}
