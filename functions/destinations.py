"""Targets of asynchronous invocations: on-success and on-failure destinations and the
dead-letter target. Stratus delivers to Lambda functions, named by their ARN."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

DESTINATION_ARN_MAX = 350
_FUNCTION_ARN_RE = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d):(?P<account>\d{12}):"
    r"function:(?P<name>[a-zA-Z0-9_-]{1,64})(:(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)
_ANY_ARN_RE = re.compile(r"^arn:aws[a-zA-Z-]*:(?P<service>[a-z0-9-]+):")
# What Lambda delivers to that Stratus does not have (yet), for a clear refusal.
_SERVICES_WITHOUT_TARGETS = {
    "sqs": "SQS queues",
    "sns": "SNS topics",
    "events": "EventBridge event buses",
    "s3": "S3 buckets",
}


@dataclass(frozen=True)
class FunctionTarget:
    """A function a destination ARN names."""

    arn: str
    region: str
    account_id: str
    name: str
    qualifier: str | None


def parse_function_target(arn: str) -> FunctionTarget:
    """The function an ARN names; ValidationError for anything else."""
    match = _FUNCTION_ARN_RE.match(arn)
    if match is not None:
        return FunctionTarget(
            arn=arn,
            region=match["region"],
            account_id=match["account"],
            name=match["name"],
            qualifier=match["qualifier"],
        )
    service = _ANY_ARN_RE.match(arn)
    if service is not None and service["service"] in _SERVICES_WITHOUT_TARGETS:
        kind = _SERVICES_WITHOUT_TARGETS[service["service"]]
        raise ValidationError(
            f"Stratus cannot deliver to {kind}: use a Lambda function ARN ({arn}).",
            code="unsupported_target",
        )
    raise ValidationError(
        f"The destination ARN {arn} is invalid: use a Lambda function ARN, e.g. "
        "arn:aws:lambda:us-east-1:123456789012:function:my-function.",
        code="invalid_target",
    )


def validate_dead_letter_target(value: str) -> None:
    """An empty value removes the dead-letter target."""
    if not value:
        return
    if len(value) > DESTINATION_ARN_MAX:
        raise ValidationError(
            f"The dead-letter target ARN must be {DESTINATION_ARN_MAX} characters or fewer.",
            code="max_length",
        )
    parse_function_target(value)
