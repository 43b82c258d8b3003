"""PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency and
GetAccountSettings. The invocation engine enforces the reservations (invocations.concurrency);
the account limit is STRATUS_ACCOUNT_CONCURRENCY_LIMIT."""

from __future__ import annotations

from django.http import HttpResponse

from api.concurrency import function_concurrency_delete, function_concurrency_put
from api.names import require_latest
from api.serializers import concurrency
from api.views.base import ApiCall, json_response, no_content
from functions.packaging import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES
from functions.selectors import account_resources

# Lambda's default code storage per Region: 75 GB.
TOTAL_CODE_SIZE_LIMIT = 75 * 1024 * 1024 * 1024


def put_function_concurrency(call: ApiCall, function_name: str) -> HttpResponse:
    params = call.params()
    params.required("ReservedConcurrentExecutions")
    reserved = params.integer("ReservedConcurrentExecutions")
    assert reserved is not None
    ref = call.function_ref(function_name)
    require_latest(ref)
    function = call.function(ref)
    function_concurrency_put(function=function, ref=ref, reserved=reserved)
    return json_response({"ReservedConcurrentExecutions": reserved})


def get_function_concurrency(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    require_latest(ref)
    return json_response(concurrency(call.function(ref)))


def delete_function_concurrency(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    require_latest(ref)
    function_concurrency_delete(function=call.function(ref), ref=ref)
    return no_content()


def get_account_settings(call: ApiCall) -> HttpResponse:
    resources = account_resources(owner_id=call.caller.user_id)
    return json_response(
        {
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_SIZE_LIMIT,
                "CodeSizeUnzipped": MAX_UNZIPPED_BYTES,
                "CodeSizeZipped": MAX_ZIPPED_BYTES,
                "ConcurrentExecutions": resources.concurrency_limit,
                "UnreservedConcurrentExecutions": resources.unreserved_concurrency,
            },
            "AccountUsage": {
                "TotalCodeSize": resources.code_size,
                "FunctionCount": resources.function_count,
            },
        }
    )
