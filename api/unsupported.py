"""Lambda operations Stratus does not implement, so a request for one gets an error that
names the operation rather than a generic "unknown path". The table follows botocore's
Lambda model (method, path, and the query parameter that tells operations on one path
apart)."""

from __future__ import annotations

import re

from api.errors import ApiError, UnknownOperationException, UnsupportedOperationException

_ROUTES: list[tuple[str, str, str | None, str]] = [
    ("GET", r"^/2018-10-31/layers$", "find", "GetLayerVersionByArn"),
    ("POST", r"^/2014-11-13/functions/[^/]+/invoke-async$", None, "InvokeAsync"),
    ("GET", r"^/2015-03-31/event-source-mappings$", None, "ListEventSourceMappings"),
    ("POST", r"^/2015-03-31/event-source-mappings$", None, "CreateEventSourceMapping"),
    ("DELETE", r"^/2015-03-31/event-source-mappings/[^/]+$", None, "DeleteEventSourceMapping"),
    ("GET", r"^/2015-03-31/event-source-mappings/[^/]+$", None, "GetEventSourceMapping"),
    ("PUT", r"^/2015-03-31/event-source-mappings/[^/]+$", None, "UpdateEventSourceMapping"),
    ("GET", r"^/2015-03-31/functions/[^/]+/policy$", None, "GetPolicy"),
    ("POST", r"^/2015-03-31/functions/[^/]+/policy$", None, "AddPermission"),
    ("DELETE", r"^/2015-03-31/functions/[^/]+/policy/[^/]+$", None, "RemovePermission"),
    ("GET", r"^/2018-10-31/layers$", None, "ListLayers"),
    ("GET", r"^/2018-10-31/layers/[^/]+/versions$", None, "ListLayerVersions"),
    ("POST", r"^/2018-10-31/layers/[^/]+/versions$", None, "PublishLayerVersion"),
    ("DELETE", r"^/2018-10-31/layers/[^/]+/versions/[^/]+$", None, "DeleteLayerVersion"),
    ("GET", r"^/2018-10-31/layers/[^/]+/versions/[^/]+$", None, "GetLayerVersion"),
    ("GET", r"^/2018-10-31/layers/[^/]+/versions/[^/]+/policy$", None, "GetLayerVersionPolicy"),
    (
        "POST",
        r"^/2018-10-31/layers/[^/]+/versions/[^/]+/policy$",
        None,
        "AddLayerVersionPermission",
    ),
    (
        "DELETE",
        r"^/2018-10-31/layers/[^/]+/versions/[^/]+/policy/[^/]+$",
        None,
        "RemoveLayerVersionPermission",
    ),
    (
        "DELETE",
        r"^/2019-09-25/functions/[^/]+/event-invoke-config$",
        None,
        "DeleteFunctionEventInvokeConfig",
    ),
    (
        "GET",
        r"^/2019-09-25/functions/[^/]+/event-invoke-config$",
        None,
        "GetFunctionEventInvokeConfig",
    ),
    (
        "POST",
        r"^/2019-09-25/functions/[^/]+/event-invoke-config$",
        None,
        "UpdateFunctionEventInvokeConfig",
    ),
    (
        "PUT",
        r"^/2019-09-25/functions/[^/]+/event-invoke-config$",
        None,
        "PutFunctionEventInvokeConfig",
    ),
    (
        "GET",
        r"^/2019-09-25/functions/[^/]+/event-invoke-config/list$",
        None,
        "ListFunctionEventInvokeConfigs",
    ),
    ("GET", r"^/2020-04-22/code-signing-configs$", None, "ListCodeSigningConfigs"),
    ("POST", r"^/2020-04-22/code-signing-configs$", None, "CreateCodeSigningConfig"),
    ("DELETE", r"^/2020-04-22/code-signing-configs/[^/]+$", None, "DeleteCodeSigningConfig"),
    ("GET", r"^/2020-04-22/code-signing-configs/[^/]+$", None, "GetCodeSigningConfig"),
    ("PUT", r"^/2020-04-22/code-signing-configs/[^/]+$", None, "UpdateCodeSigningConfig"),
    (
        "GET",
        r"^/2020-04-22/code-signing-configs/[^/]+/functions$",
        None,
        "ListFunctionsByCodeSigningConfig",
    ),
    (
        "DELETE",
        r"^/2020-06-30/functions/[^/]+/code-signing-config$",
        None,
        "DeleteFunctionCodeSigningConfig",
    ),
    (
        "GET",
        r"^/2020-06-30/functions/[^/]+/code-signing-config$",
        None,
        "GetFunctionCodeSigningConfig",
    ),
    (
        "PUT",
        r"^/2020-06-30/functions/[^/]+/code-signing-config$",
        None,
        "PutFunctionCodeSigningConfig",
    ),
    (
        "GET",
        r"^/2021-07-20/functions/[^/]+/runtime-management-config$",
        None,
        "GetRuntimeManagementConfig",
    ),
    (
        "PUT",
        r"^/2021-07-20/functions/[^/]+/runtime-management-config$",
        None,
        "PutRuntimeManagementConfig",
    ),
    ("DELETE", r"^/2021-10-31/functions/[^/]+/url$", None, "DeleteFunctionUrlConfig"),
    ("GET", r"^/2021-10-31/functions/[^/]+/url$", None, "GetFunctionUrlConfig"),
    ("POST", r"^/2021-10-31/functions/[^/]+/url$", None, "CreateFunctionUrlConfig"),
    ("PUT", r"^/2021-10-31/functions/[^/]+/url$", None, "UpdateFunctionUrlConfig"),
    ("GET", r"^/2021-10-31/functions/[^/]+/urls$", None, "ListFunctionUrlConfigs"),
    (
        "POST",
        r"^/2021-11-15/functions/[^/]+/response-streaming-invocations$",
        None,
        "InvokeWithResponseStream",
    ),
    ("GET", r"^/2024-08-31/functions/[^/]+/recursion-config$", None, "GetFunctionRecursionConfig"),
    ("PUT", r"^/2024-08-31/functions/[^/]+/recursion-config$", None, "PutFunctionRecursionConfig"),
    ("GET", r"^/2025-11-30/capacity-providers$", None, "ListCapacityProviders"),
    ("POST", r"^/2025-11-30/capacity-providers$", None, "CreateCapacityProvider"),
    ("DELETE", r"^/2025-11-30/capacity-providers/[^/]+$", None, "DeleteCapacityProvider"),
    ("GET", r"^/2025-11-30/capacity-providers/[^/]+$", None, "GetCapacityProvider"),
    ("PUT", r"^/2025-11-30/capacity-providers/[^/]+$", None, "UpdateCapacityProvider"),
    (
        "GET",
        r"^/2025-11-30/capacity-providers/[^/]+/function-versions$",
        None,
        "ListFunctionVersionsByCapacityProvider",
    ),
    (
        "GET",
        r"^/2025-11-30/functions/[^/]+/function-scaling-config$",
        None,
        "GetFunctionScalingConfig",
    ),
    (
        "PUT",
        r"^/2025-11-30/functions/[^/]+/function-scaling-config$",
        None,
        "PutFunctionScalingConfig",
    ),
    (
        "POST",
        r"^/2025-12-01/durable-execution-callbacks/[^/]+/fail$",
        None,
        "SendDurableExecutionCallbackFailure",
    ),
    (
        "POST",
        r"^/2025-12-01/durable-execution-callbacks/[^/]+/heartbeat$",
        None,
        "SendDurableExecutionCallbackHeartbeat",
    ),
    (
        "POST",
        r"^/2025-12-01/durable-execution-callbacks/[^/]+/succeed$",
        None,
        "SendDurableExecutionCallbackSuccess",
    ),
    ("DELETE", r"^/2025-12-01/durable-executions/[^/]+$", None, "DeleteDurableExecution"),
    ("GET", r"^/2025-12-01/durable-executions/[^/]+$", None, "GetDurableExecution"),
    (
        "POST",
        r"^/2025-12-01/durable-executions/[^/]+/checkpoint$",
        None,
        "CheckpointDurableExecution",
    ),
    ("GET", r"^/2025-12-01/durable-executions/[^/]+/history$", None, "GetDurableExecutionHistory"),
    ("POST", r"^/2025-12-01/durable-executions/[^/]+/pause$", None, "PauseDurableExecution"),
    ("POST", r"^/2025-12-01/durable-executions/[^/]+/resume$", None, "ResumeDurableExecution"),
    ("GET", r"^/2025-12-01/durable-executions/[^/]+/state$", None, "GetDurableExecutionState"),
    ("POST", r"^/2025-12-01/durable-executions/[^/]+/stop$", None, "StopDurableExecution"),
    (
        "GET",
        r"^/2025-12-01/functions/[^/]+/durable-executions$",
        None,
        "ListDurableExecutionsByFunction",
    ),
    ("DELETE", r"^/2026-07-09/resource-policy/[^/]+$", None, "DeleteResourcePolicy"),
    ("GET", r"^/2026-07-09/resource-policy/[^/]+$", None, "GetResourcePolicy"),
    ("PUT", r"^/2026-07-09/resource-policy/[^/]+$", None, "PutResourcePolicy"),
]
_COMPILED = [(method, re.compile(pattern), query, name) for method, pattern, query, name in _ROUTES]


def operation_name(method: str, path: str, query_names: set[str]) -> str | None:
    for route_method, pattern, query, name in _COMPILED:
        if route_method != method or not pattern.match(path):
            continue
        if query is None or query in query_names:
            return name
    return None


def unsupported(method: str, path: str, query_names: set[str]) -> ApiError:
    """The error for a request no implemented operation answers."""
    name = operation_name(method, path, query_names)
    if name is None:
        return UnknownOperationException(f"No Lambda operation answers {method} {path}.")
    return UnsupportedOperationException(f"Stratus does not support the {name} operation.")
