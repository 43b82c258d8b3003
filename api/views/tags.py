"""TagResource, UntagResource and ListTags, on a function's ARN."""

from __future__ import annotations

from django.http import HttpResponse

from api.errors import InvalidParameterValueException
from api.names import parse_function_arn
from api.tagging import function_tags_add, function_tags_remove
from api.views.base import ApiCall, json_response, no_content


def tag_resource(call: ApiCall, resource: str) -> HttpResponse:
    params = call.params()
    params.required("Tags")
    tags = params.string_map("Tags") or {}
    ref = parse_function_arn(resource, account_id=call.caller.account_id)
    function_tags_add(function=call.function(ref), ref=ref, tags=tags)
    return no_content()


def untag_resource(call: ApiCall, resource: str) -> HttpResponse:
    keys = call.request.GET.getlist("tagKeys")
    if not keys:
        raise InvalidParameterValueException(
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
            "constraint: Member must not be null"
        )
    ref = parse_function_arn(resource, account_id=call.caller.account_id)
    function_tags_remove(function=call.function(ref), ref=ref, keys=keys)
    return no_content()


def list_tags(call: ApiCall, resource: str) -> HttpResponse:
    ref = parse_function_arn(resource, account_id=call.caller.account_id)
    return json_response({"Tags": dict(call.function(ref).tags)})
