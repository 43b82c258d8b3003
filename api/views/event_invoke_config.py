"""PutFunctionEventInvokeConfig, UpdateFunctionEventInvokeConfig, GetFunctionEventInvokeConfig,
DeleteFunctionEventInvokeConfig and ListFunctionEventInvokeConfigs: how asynchronous
invocations of a function, version or alias are retried and where their records go."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse

from api.errors import InvalidParameterValueException, ResourceNotFoundException
from api.function_services import invalid_parameters
from api.names import LATEST
from api.params import Params, name_after_marker, name_marker
from api.views.base import ApiCall, json_response, no_content
from api.views.versions import max_items, published_version
from console.selectors import function_arn
from functions.models import Function
from invocations.async_config import (
    EVENT_AGE_RANGE,
    RETRY_ATTEMPTS_RANGE,
    UNCHANGED,
    event_invoke_config_delete,
    event_invoke_config_get,
    event_invoke_config_list,
    event_invoke_config_put,
    event_invoke_config_update,
)
from invocations.models import EventInvokeConfig

LIST_MAX_ITEMS_RANGE = (1, 50)
NOTHING_TO_SET = "You must specify at least one of error handling or destination setting."


def event_invoke_config_body(config: EventInvokeConfig, *, account_id: str) -> dict[str, Any]:
    """FunctionEventInvokeConfig: LastModified in epoch seconds, absent settings left out,
    and an empty object for a destination that is not set."""
    body: dict[str, Any] = {
        "LastModified": config.last_modified.timestamp(),
        "FunctionArn": function_arn(
            account_id=account_id, function_name=config.function.name, qualifier=config.qualifier
        ),
    }
    if config.maximum_retry_attempts is not None:
        body["MaximumRetryAttempts"] = config.maximum_retry_attempts
    if config.maximum_event_age_in_seconds is not None:
        body["MaximumEventAgeInSeconds"] = config.maximum_event_age_in_seconds
    body["DestinationConfig"] = {
        "OnSuccess": {"Destination": config.on_success} if config.on_success else {},
        "OnFailure": {"Destination": config.on_failure} if config.on_failure else {},
    }
    return body


def _qualified(call: ApiCall, function_name: str) -> tuple[Function, str]:
    """The function and the qualifier the request names; a version or alias that does not
    exist is not found."""
    ref = call.function_ref(function_name)
    function = call.function(ref)
    published_version(function, ref)
    return function, ref.qualifier or LATEST


def _missing(call: ApiCall, function: Function, qualifier: str) -> ResourceNotFoundException:
    arn = function_arn(
        account_id=call.caller.account_id, function_name=function.name, qualifier=qualifier
    )
    return ResourceNotFoundException(f"The function {arn} doesn't have an EventInvokeConfig")


def _in_range(params: Params, member: str, bounds: tuple[int, int]) -> int | None:
    value = params.integer(member)
    if value is None:
        return None
    low, high = bounds
    path = member[:1].lower() + member[1:]
    for broken, constraint in (
        (value < low, f"greater than or equal to {low}"),
        (value > high, f"less than or equal to {high}"),
    ):
        if broken:
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
                f"constraint: Member must have value {constraint}"
            )
    return value


def _destinations(params: Params) -> tuple[str, str] | None:
    """(on success, on failure) from DestinationConfig, "" where one is not set; None when
    the request has no DestinationConfig."""
    config = params.structure("DestinationConfig")
    if config is None:
        return None
    found = []
    for member in ("OnSuccess", "OnFailure"):
        destination = config.structure(member)
        found.append((destination.string("Destination") if destination else None) or "")
    return found[0], found[1]


def _settings(params: Params) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "maximum_retry_attempts": _in_range(params, "MaximumRetryAttempts", RETRY_ATTEMPTS_RANGE),
        "maximum_event_age_in_seconds": _in_range(
            params, "MaximumEventAgeInSeconds", EVENT_AGE_RANGE
        ),
    }
    destinations = _destinations(params)
    if destinations is not None:
        settings["on_success"], settings["on_failure"] = destinations
    return settings


def _refusal(exc: ValidationError) -> InvalidParameterValueException:
    return invalid_parameters(exc)


def put_function_event_invoke_config(call: ApiCall, function_name: str) -> HttpResponse:
    function, qualifier = _qualified(call, function_name)
    params = call.params()
    settings = _settings(params)
    if all(value is None for value in settings.values()):
        raise InvalidParameterValueException(NOTHING_TO_SET)
    try:
        config = event_invoke_config_put(function=function, qualifier=qualifier, **settings)
    except ValidationError as exc:
        raise _refusal(exc) from exc
    config.function = function
    return json_response(event_invoke_config_body(config, account_id=call.caller.account_id))


def update_function_event_invoke_config(call: ApiCall, function_name: str) -> HttpResponse:
    function, qualifier = _qualified(call, function_name)
    params = call.params()
    settings = _settings(params)
    if all(value is None for value in settings.values()):
        raise InvalidParameterValueException(NOTHING_TO_SET)
    config = event_invoke_config_get(function=function, qualifier=qualifier)
    if config is None:
        raise _missing(call, function, qualifier)
    config.function = function
    changes = {name: UNCHANGED if value is None else value for name, value in settings.items()}
    try:
        updated = event_invoke_config_update(config=config, **changes)
    except ValidationError as exc:
        raise _refusal(exc) from exc
    return json_response(event_invoke_config_body(updated, account_id=call.caller.account_id))


def get_function_event_invoke_config(call: ApiCall, function_name: str) -> HttpResponse:
    function, qualifier = _qualified(call, function_name)
    config = event_invoke_config_get(function=function, qualifier=qualifier)
    if config is None:
        raise _missing(call, function, qualifier)
    config.function = function
    return json_response(event_invoke_config_body(config, account_id=call.caller.account_id))


def delete_function_event_invoke_config(call: ApiCall, function_name: str) -> HttpResponse:
    function, qualifier = _qualified(call, function_name)
    config = event_invoke_config_get(function=function, qualifier=qualifier)
    if config is None:
        raise _missing(call, function, qualifier)
    event_invoke_config_delete(config=config)
    return no_content()


def list_function_event_invoke_configs(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    function = call.function(ref)
    limit = max_items(
        call.query("MaxItems"), bounds=LIST_MAX_ITEMS_RANGE, default=LIST_MAX_ITEMS_RANGE[1]
    )
    configs = event_invoke_config_list(function=function)
    marker = call.query("Marker")
    if marker:
        configs = configs.filter(qualifier__gt=name_after_marker(marker))
    page = list(configs[: limit + 1])
    account_id = call.caller.account_id
    for config in page:
        config.function = function
    body: dict[str, Any] = {
        "FunctionEventInvokeConfigs": [
            event_invoke_config_body(config, account_id=account_id) for config in page[:limit]
        ]
    }
    if len(page) > limit:
        body["NextMarker"] = name_marker(page[limit - 1].qualifier)
    return json_response(body)
