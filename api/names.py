"""Function names as the API accepts them (name, name:qualifier, partial ARN, full ARN),
qualifiers, and role ARNs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from api.errors import InvalidParameterValueException, ResourceNotFoundException
from console.selectors import function_arn

LATEST = "$LATEST"

# botocore's FunctionName pattern, with named groups and anchored.
_FUNCTION_NAME_RE = re.compile(
    r"^(?P<arn>arn:(?:aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?P<function_prefix>function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)
_FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_QUALIFIER_RE = re.compile(r"^(?:\$LATEST|[a-zA-Z0-9_$-]{1,128})$")
_ROLE_ARN_RE = re.compile(
    r"^arn:(?:aws[a-zA-Z-]*)?:iam::(?P<account>\d{12}):role"
    r"(?P<path>/(?:[a-zA-Z_0-9+=,.@-]+/)*)(?P<name>[a-zA-Z_0-9+=,.@-]+)$"
)
ROLE_ARN_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class FunctionRef:
    """A function named in a request, in the caller's account."""

    name: str
    account_id: str
    qualifier: str | None = None

    @property
    def arn(self) -> str:
        return function_arn(account_id=self.account_id, function_name=self.name)

    @property
    def qualified_arn(self) -> str:
        return function_arn(
            account_id=self.account_id, function_name=self.name, qualifier=self.qualifier
        )

    def not_found(self) -> ResourceNotFoundException:
        return ResourceNotFoundException(f"Function not found: {self.qualified_arn}")


@dataclass(frozen=True)
class RoleRef:
    account_id: str
    path: str
    name: str


def validation_message(value: str, member: str, pattern: str) -> str:
    """Lambda's wording for a value that does not fit a member's pattern."""
    return (
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {pattern}"
    )


def parse_function_name(
    value: str, *, account_id: str, query_qualifier: str | None = None
) -> FunctionRef:
    """The function a FunctionName names, in the caller's account.

    A name with another account or region cannot be one of the caller's functions, so it is
    reported as not found, as Lambda reports a function the caller may not see."""
    match = _FUNCTION_NAME_RE.match(value)
    is_arn = match is not None and bool(match["arn"] or match["region"])
    if (
        match is None
        or is_arn
        and not (match["region"] and match["account"] and match["function_prefix"])
    ):
        raise InvalidParameterValueException(
            validation_message(value, "functionName", _FUNCTION_NAME_PATTERN)
        )
    name = match["name"]
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{value}' at 'functionName' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_NAME_LENGTH}"
        )
    qualifier = _merge_qualifiers(match["qualifier"], query_qualifier)
    named_account = match["account"] or account_id
    named_region = match["region"] or settings.STRATUS_REGION
    if named_account != account_id or named_region != settings.STRATUS_REGION:
        arn = f"arn:aws:lambda:{named_region}:{named_account}:function:{name}"
        suffix = f":{qualifier}" if qualifier else ""
        raise ResourceNotFoundException(f"Function not found: {arn}{suffix}")
    return FunctionRef(name=name, account_id=account_id, qualifier=qualifier)


def function_name_in(value: str | None) -> str | None:
    """The bare function name a FunctionName gives, if it is well formed; checked no
    further (parse_function_name does that)."""
    match = _FUNCTION_NAME_RE.match(value or "")
    return match["name"] if match else None


def _merge_qualifiers(from_name: str | None, from_query: str | None) -> str | None:
    if from_query is not None and not _QUALIFIER_RE.match(from_query):
        raise InvalidParameterValueException(
            validation_message(from_query, "qualifier", r"(|[a-zA-Z0-9$_-]+)")
        )
    if from_name and from_query and from_name != from_query:
        raise InvalidParameterValueException(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return from_name or from_query


def require_latest(ref: FunctionRef) -> None:
    """Only $LATEST exists until versions and aliases do: any other qualifier names a
    version or alias that is not there."""
    if ref.qualifier not in (None, LATEST):
        raise ref.not_found()


def parse_function_arn(value: str, *, account_id: str) -> FunctionRef:
    """A tagging resource: the function's full ARN, without a qualifier."""
    match = _FUNCTION_NAME_RE.match(value)
    if match is None or not match["arn"]:
        raise InvalidParameterValueException(
            validation_message(
                value,
                "resource",
                r"arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:"
                r"\d{12}:function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?",
            )
        )
    if match["qualifier"]:
        raise InvalidParameterValueException(
            "Tags on function aliases and versions are not supported. Please specify a "
            "function ARN."
        )
    return parse_function_name(value, account_id=account_id)


def parse_role_arn(value: str) -> RoleRef:
    match = _ROLE_ARN_RE.match(value)
    if match is None:
        raise InvalidParameterValueException(validation_message(value, "role", ROLE_ARN_PATTERN))
    return RoleRef(account_id=match["account"], path=match["path"], name=match["name"])
