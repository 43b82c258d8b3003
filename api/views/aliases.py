"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias and ListAliases."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.http import HttpResponse

from api.errors import (
    ApiError,
    InvalidParameterValueException,
    InvalidRequestContentException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from api.function_services import invalid_parameters
from api.locks import REVISION_MISMATCH
from api.names import FunctionRef, validation_message
from api.params import Params, name_after_marker, name_marker
from api.views.base import ApiCall, json_response, no_content
from api.views.versions import max_items
from console.selectors import function_arn
from functions.alias_services import (
    UNCHANGED,
    AliasExists,
    AliasVersionNotFound,
    Routing,
    function_alias_create,
    function_alias_delete,
    function_alias_update,
)
from functions.models import Function, FunctionAlias
from functions.selectors import function_alias_get, function_alias_list
from functions.services import RevisionMismatch

ALIAS_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
VERSION_PATTERN = r"(\$LATEST|[0-9]+)"
_ALIAS_RE = re.compile(rf"^{ALIAS_PATTERN}$")
_VERSION_RE = re.compile(rf"^{VERSION_PATTERN}$")
_NAME_MAX = 128


def alias_configuration(alias: FunctionAlias, *, account_id: str) -> dict[str, object]:
    body: dict[str, object] = {
        "AliasArn": function_arn(
            account_id=account_id, function_name=alias.function.name, qualifier=alias.name
        ),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": str(alias.revision_id),
    }
    if alias.is_weighted:
        body["RoutingConfig"] = {
            "AdditionalVersionWeights": {alias.additional_version: alias.additional_weight}
        }
    return body


def _function(call: ApiCall, function_name: str, operation: str) -> tuple[FunctionRef, Function]:
    ref = call.function_ref(function_name)
    if ref.qualifier:
        raise InvalidParameterValueException(f"{operation} takes an unqualified function name.")
    return ref, call.function(ref)


def _checked_name(name: str) -> str:
    if not _ALIAS_RE.match(name):
        raise InvalidParameterValueException(validation_message(name, "name", ALIAS_PATTERN))
    if len(name) > _NAME_MAX:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
            f"constraint: Member must have length less than or equal to {_NAME_MAX}"
        )
    return name


def _checked_version(value: str, member: str) -> str:
    if not _VERSION_RE.match(value):
        raise InvalidParameterValueException(validation_message(value, member, VERSION_PATTERN))
    return value


def _routing(params: Params) -> Routing | None:
    """The RoutingConfig member: None for none, or for an empty weight map (which makes a
    weighted alias a plain one again)."""
    config = params.structure("RoutingConfig")
    weights = config.raw("AdditionalVersionWeights") if config is not None else None
    if weights is None or weights == {}:
        return None
    if not isinstance(weights, dict) or not all(
        isinstance(weight, int | float) and not isinstance(weight, bool)
        for weight in weights.values()
    ):
        raise InvalidRequestContentException(
            "Could not parse request body into json: 'routingConfig.additionalVersionWeights' "
            "must be an object of numbers."
        )
    if len(weights) > 1:
        raise InvalidParameterValueException(
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        )
    ((version, weight),) = weights.items()
    if not 0.0 <= weight <= 1.0:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{{{version}={weight}}}' at "
            "'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value "
            "must satisfy constraint: [Member must have value less than or equal to 1.0, "
            "Member must have value greater than or equal to 0.0]"
        )
    return Routing(additional_version=version, weight=float(weight))


def _refusal(exc: ValidationError) -> ApiError:
    message = " ".join(exc.messages)
    if isinstance(exc, AliasExists):
        return ResourceConflictException(message)
    if isinstance(exc, AliasVersionNotFound):
        return ResourceNotFoundException(message)
    return invalid_parameters(exc)


def _alias(ref: FunctionRef, function: Function, name: str) -> FunctionAlias:
    alias = function_alias_get(function=function, name=name)
    if alias is None:
        arn = function_arn(account_id=ref.account_id, function_name=function.name, qualifier=name)
        raise ResourceNotFoundException(f"Alias not found: {arn}")
    alias.function = function
    return alias


def create_alias(call: ApiCall, function_name: str) -> HttpResponse:
    _, function = _function(call, function_name, "CreateAlias")
    params = call.params()
    params.required("Name")
    params.required("FunctionVersion")
    name = _checked_name(params.string("Name") or "")
    version = _checked_version(params.string("FunctionVersion") or "", "functionVersion")
    try:
        alias = function_alias_create(
            function=function,
            name=name,
            function_version=version,
            description=params.string("Description") or "",
            routing=_routing(params),
        )
    except ValidationError as exc:
        raise _refusal(exc) from exc
    return json_response(alias_configuration(alias, account_id=call.caller.account_id), status=201)


def get_alias(call: ApiCall, function_name: str, name: str) -> HttpResponse:
    ref, function = _function(call, function_name, "GetAlias")
    alias = _alias(ref, function, _checked_name(name))
    return json_response(alias_configuration(alias, account_id=call.caller.account_id))


def update_alias(call: ApiCall, function_name: str, name: str) -> HttpResponse:
    ref, function = _function(call, function_name, "UpdateAlias")
    alias = _alias(ref, function, _checked_name(name))
    params = call.params()
    version = params.string("FunctionVersion")
    try:
        updated = function_alias_update(
            alias=alias,
            function_version=None
            if version is None
            else _checked_version(version, "functionVersion"),
            description=params.string("Description"),
            routing=_routing(params) if "RoutingConfig" in params else UNCHANGED,
            revision_id=params.string("RevisionId"),
        )
    except RevisionMismatch as exc:
        raise PreconditionFailedException(REVISION_MISMATCH) from exc
    except ValidationError as exc:
        raise _refusal(exc) from exc
    updated.function = function
    return json_response(alias_configuration(updated, account_id=call.caller.account_id))


def delete_alias(call: ApiCall, function_name: str, name: str) -> HttpResponse:
    _, function = _function(call, function_name, "DeleteAlias")
    alias = function_alias_get(function=function, name=_checked_name(name))
    # Deleting an alias that is not there succeeds, as it does on Lambda.
    if alias is not None:
        function_alias_delete(alias=alias)
    return no_content()


def list_aliases(call: ApiCall, function_name: str) -> HttpResponse:
    _, function = _function(call, function_name, "ListAliases")
    version = call.query("FunctionVersion")
    if version is not None:
        _checked_version(version, "functionVersion")
    limit = max_items(call.query("MaxItems"))
    marker = call.query("Marker")
    aliases = function_alias_list(function=function, function_version=version)
    if marker:
        aliases = aliases.filter(name__gt=name_after_marker(marker))
    page = list(aliases[: limit + 1])
    account_id = call.caller.account_id
    for alias in page:
        alias.function = function
    body: dict[str, object] = {
        "Aliases": [alias_configuration(alias, account_id=account_id) for alias in page[:limit]]
    }
    if len(page) > limit:
        body["NextMarker"] = name_marker(page[limit - 1].name)
    return json_response(body)
