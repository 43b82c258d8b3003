"""PublishVersion and ListVersionsByFunction, and the published version a qualified name
points at (for the operations that accept one)."""

from __future__ import annotations

import base64
import binascii
import json

from django.core.exceptions import ValidationError
from django.http import HttpResponse

from api.errors import InvalidParameterValueException, PreconditionFailedException
from api.function_services import invalid_parameters
from api.locks import REVISION_MISMATCH
from api.names import LATEST, FunctionRef
from api.serializers import function_configuration, version_configuration
from api.views.base import ApiCall, json_response
from functions.models import Function, FunctionVersion
from functions.selectors import (
    function_alias_get,
    function_version_get,
    function_version_list,
)
from functions.services import RevisionMismatch, function_version_publish

DEFAULT_MAX_ITEMS = 50
MAX_ITEMS_RANGE = (1, 10_000)


def published_version(function: Function, ref: FunctionRef) -> FunctionVersion | None:
    """The version a qualified name names: None for $LATEST (or no qualifier). An alias
    names the version it points to (the primary one of a weighted alias). Any other
    qualifier is not found."""
    if ref.qualifier in (None, LATEST):
        return None
    number = ref.qualifier or ""
    if not number.isdigit():
        alias = function_alias_get(function=function, name=number)
        if alias is None:
            raise ref.not_found()
        if alias.function_version == LATEST:
            return None
        number = alias.function_version
    version = function_version_get(function=function, version=number)
    if version is None:
        raise ref.not_found()
    return version


def is_alias(ref: FunctionRef) -> bool:
    return ref.qualifier not in (None, LATEST) and not (ref.qualifier or "").isdigit()


def publish(
    function: Function, *, description: str = "", **preconditions: str | None
) -> FunctionVersion:
    """Publish through the service, with its refusals turned into Lambda's errors."""
    try:
        return function_version_publish(function=function, description=description, **preconditions)
    except RevisionMismatch as exc:
        raise PreconditionFailedException(REVISION_MISMATCH) from exc
    except ValidationError as exc:
        raise invalid_parameters(exc) from exc


def publish_version(call: ApiCall, function_name: str) -> HttpResponse:
    params = call.params()
    ref = call.function_ref(function_name)
    if ref.qualifier:
        raise InvalidParameterValueException("PublishVersion takes an unqualified function name.")
    function = call.function(ref)
    version = publish(
        function,
        description=params.string("Description") or "",
        code_sha256=params.string("CodeSha256"),
        revision_id=params.string("RevisionId"),
    )
    return json_response(
        version_configuration(version, account_id=call.caller.account_id), status=201
    )


def max_items(
    value: str | None,
    *,
    bounds: tuple[int, int] = MAX_ITEMS_RANGE,
    default: int = DEFAULT_MAX_ITEMS,
) -> int:
    """A list operation's MaxItems, checked against the operation's bounds."""
    if value is None:
        return default
    low, high = bounds
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not low <= number <= high:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy "
            f"constraint: Member must have value between {low} and {high}"
        )
    return number


def _encode_marker(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode()


def _decode_marker(marker: str) -> int:
    try:
        claims = json.loads(base64.urlsafe_b64decode(marker.encode()))
        return int(claims["after"])
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise InvalidParameterValueException(f"Invalid Marker: {marker}") from exc


def list_versions_by_function(call: ApiCall, function_name: str) -> HttpResponse:
    """$LATEST first, then the published versions in order. The marker is the last version
    number listed ($LATEST counts as 0)."""
    ref = call.function_ref(function_name)
    if ref.qualifier:
        raise InvalidParameterValueException(
            "ListVersionsByFunction takes an unqualified function name."
        )
    function = call.function(ref)
    limit = max_items(call.query("MaxItems"))
    marker = call.query("Marker")
    after = _decode_marker(marker) if marker else -1
    account_id = call.caller.account_id
    entries: list[tuple[int, dict[str, object]]] = []
    if after < 0:
        entries.append((0, function_configuration(function, account_id=account_id, full=False)))
    versions = function_version_list(function=function).select_related("role", "function")
    for version in versions.filter(version__gt=max(after, 0))[: limit + 1]:
        entries.append(
            (version.version, version_configuration(version, account_id=account_id, full=False))
        )
    body: dict[str, object] = {"Versions": [entry for _, entry in entries[:limit]]}
    if len(entries) > limit:
        body["NextMarker"] = _encode_marker(entries[limit - 1][0])
    return json_response(body)
