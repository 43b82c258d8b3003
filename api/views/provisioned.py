"""PutProvisionedConcurrencyConfig, GetProvisionedConcurrencyConfig,
DeleteProvisionedConcurrencyConfig and ListProvisionedConcurrencyConfigs: one path, told
apart by method and by ?List=ALL."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.http import HttpResponse

from api.concurrency import provisioned_config_delete, provisioned_config_put
from api.errors import ApiError, InvalidParameterValueException
from api.names import FunctionRef
from api.serializers import lambda_timestamp
from api.views.base import ApiCall, json_response, no_content
from console.selectors import function_arn
from functions.concurrency_services import provisioned_config_get, provisioned_config_list
from functions.models import Function, ProvisionedConcurrencyConfig

MAX_ITEMS_RANGE = (1, 50)


class ProvisionedConcurrencyConfigNotFoundException(ApiError):
    code = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404
    message_member = "message"


def provisioned_configuration(config: ProvisionedConcurrencyConfig) -> dict[str, Any]:
    data: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": config.available,
        "AllocatedProvisionedConcurrentExecutions": config.allocated,
        "Status": config.status,
        "LastModified": lambda_timestamp(config.last_modified),
    }
    if config.status_reason:
        data["StatusReason"] = config.status_reason
    return data


def _qualified(call: ApiCall, function_name: str) -> tuple[FunctionRef, str, Function]:
    ref = call.function_ref(function_name)
    if not ref.qualifier:
        raise InvalidParameterValueException(
            "1 validation error detected: Value null at 'qualifier' failed to satisfy "
            "constraint: Member must not be null"
        )
    return ref, ref.qualifier, call.function(ref)


def put_provisioned_concurrency_config(call: ApiCall, function_name: str) -> HttpResponse:
    params = call.params()
    params.required("ProvisionedConcurrentExecutions")
    requested = params.integer("ProvisionedConcurrentExecutions")
    assert requested is not None
    ref, qualifier, function = _qualified(call, function_name)
    config = provisioned_config_put(
        function=function, ref=ref, qualifier=qualifier, requested=requested
    )
    return json_response(provisioned_configuration(config), status=202)


def provisioned_concurrency(call: ApiCall, function_name: str) -> HttpResponse:
    """GET: one configuration, or with ?List=ALL the function's list."""
    if call.query("List") == "ALL":
        return _list(call, function_name)
    ref, qualifier, function = _qualified(call, function_name)
    config = provisioned_config_get(function=function, qualifier=qualifier)
    if config is None:
        raise ProvisionedConcurrencyConfigNotFoundException(
            "No Provisioned Concurrency Config found for this function"
        )
    return json_response(provisioned_configuration(config))


def delete_provisioned_concurrency_config(call: ApiCall, function_name: str) -> HttpResponse:
    ref, qualifier, function = _qualified(call, function_name)
    provisioned_config_delete(function=function, ref=ref, qualifier=qualifier)
    return no_content()


def _list(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    function = call.function(ref)
    limit = _max_items(call.query("MaxItems"))
    start = _decode_marker(call.query("Marker"))
    configs = provisioned_config_list(function=function)
    page = configs[start : start + limit]
    items = [
        {
            "FunctionArn": function_arn(
                account_id=call.caller.account_id,
                function_name=function.name,
                qualifier=config.qualifier,
            ),
            **provisioned_configuration(config),
        }
        for config in page
    ]
    body: dict[str, Any] = {"ProvisionedConcurrencyConfigs": items}
    if start + limit < len(configs):
        body["NextMarker"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
    return json_response(body)


def _max_items(value: str | None) -> int:
    low, high = MAX_ITEMS_RANGE
    if value is None:
        return high
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


def _decode_marker(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(marker.encode()).decode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterValueException(f"Invalid Marker: {marker}") from exc
