"""Function settings in CreateFunction and UpdateFunctionConfiguration requests, read into
the fields the function services take.

Settings Stratus cannot honour are refused with a clear error when they ask for something
(a VPC, layers, a KMS key...), and accepted when they only restate the default, as tools
often send them empty."""

from __future__ import annotations

from typing import Any

from api.errors import InvalidParameterValueException
from api.params import Params

_STRING_FIELDS = {"Description": "description", "Handler": "handler", "Runtime": "runtime"}
_INTEGER_FIELDS = {"MemorySize": "memory_size", "Timeout": "timeout"}
# Settings Stratus has no counterpart for, in any form.
_ABSENT_FEATURES = {
    "CodeSigningConfigArn": "code signing",
    "ImageConfig": "container image settings",
    "TenancyConfig": "tenant isolation",
    "CapacityProviderConfig": "capacity providers",
    "DurableConfig": "durable functions",
    "RuntimeConfig": "runtime configuration",
    "AcceleratorConfig": "accelerators",
    "PublishTo": "publishing to LATEST_PUBLISHED",
}


def unsupported(feature: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Stratus does not support {feature}.")


def configuration_changes(params: Params) -> dict[str, Any]:
    """The settings the request names, as function fields. Environment replaces the whole
    set of variables; an empty one removes them all."""
    changes: dict[str, Any] = {}
    for member, field in _STRING_FIELDS.items():
        text = params.string(member)
        if text is not None:
            changes[field] = text
    for member, field in _INTEGER_FIELDS.items():
        number = params.integer(member)
        if number is not None:
            changes[field] = number
    environment = params.structure("Environment")
    if environment is not None:
        changes["environment"] = environment.string_map("Variables") or {}
    storage = params.structure("EphemeralStorage")
    if storage is not None:
        storage.required("Size")
        changes["ephemeral_storage"] = storage.integer("Size")
    dead_letter = params.structure("DeadLetterConfig")
    if dead_letter is not None:
        # A function ARN (Stratus has no queues); an empty TargetArn removes it.
        changes["dead_letter_target_arn"] = dead_letter.string("TargetArn") or ""
    return changes


def architecture(params: Params) -> str | None:
    architectures = params.string_list("Architectures")
    if architectures is None:
        return None
    if len(architectures) != 1 or architectures[0] not in {"x86_64", "arm64"}:
        raise InvalidParameterValueException(
            "1 validation error detected: Value "
            f"{architectures} at 'architectures' failed to satisfy constraint: Member must "
            "have length less than or equal to 1, and each member must be x86_64 or arm64"
        )
    return architectures[0]


def reject_unsupported(params: Params, *, function_name: str) -> None:
    """Refuse the settings that ask for something Stratus does not do."""
    for member, feature in _ABSENT_FEATURES.items():
        if member in params:
            raise unsupported(feature)
    vpc = params.structure("VpcConfig")
    if vpc is not None and (vpc.string_list("SubnetIds") or vpc.string_list("SecurityGroupIds")):
        raise unsupported("VPC access (VpcConfig)")
    if params.string("KMSKeyArn"):
        raise unsupported("customer managed KMS keys (KMSKeyArn)")
    tracing = params.structure("TracingConfig")
    if tracing is not None and tracing.string("Mode") not in (None, "PassThrough"):
        raise unsupported("active tracing (TracingConfig)")
    if params.raw("Layers"):
        raise unsupported("layers")
    if params.raw("FileSystemConfigs"):
        raise unsupported("file systems (FileSystemConfigs)")
    snap_start = params.structure("SnapStart")
    if snap_start is not None and snap_start.string("ApplyOn") not in (None, "None"):
        raise unsupported("SnapStart")
    _check_logging(params.structure("LoggingConfig"), function_name=function_name)


def _check_logging(logging: Params | None, *, function_name: str) -> None:
    if logging is None:
        return
    if logging.string("LogFormat") not in (None, "Text"):
        raise unsupported("the JSON log format")
    if "ApplicationLogLevel" in logging or "SystemLogLevel" in logging:
        raise unsupported("log level filtering")
    log_group = logging.string("LogGroup")
    if log_group not in (None, f"/aws/lambda/{function_name}"):
        raise unsupported("custom log groups")
