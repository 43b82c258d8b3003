"""Invoke: RequestResponse (200, the function's answer), Event (202, queued), DryRun
(204, checked only)."""

from __future__ import annotations

import base64
import binascii
import json

from django.http import HttpResponse

from api.errors import (
    ApiError,
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestTooLargeException,
    ResourceConflictException,
    ServiceException,
    TooManyRequestsException,
    UnsupportedMediaTypeException,
)
from api.names import LATEST, validation_message
from api.views.base import REQUEST_ID_HEADER, ApiCall
from api.views.versions import published_version
from functions.models import FunctionState
from invocations.concurrency import (
    RETRY_AFTER_SECONDS,
    THROTTLE_MESSAGE,
    Throttled,
    ThrottleReason,
)
from invocations.errors import (
    InvocationLost,
    InvocationRejected,
    InvocationWaitTimeout,
    VersionNotFound,
)
from invocations.models import InvocationStatus, InvocationType
from invocations.recorder import THROTTLED_ERROR_TYPE
from invocations.services import (
    MAX_SYNC_PAYLOAD_BYTES,
    invocation_log_messages,
    invocation_submit,
    invocation_wait,
)

INVOKE_MAX_BYTES = MAX_SYNC_PAYLOAD_BYTES
CLIENT_CONTEXT_MAX_BYTES = 3583
LOG_TAIL_BYTES = 4096
DRY_RUN = "DryRun"
_REJECTIONS: dict[str, type[ApiError]] = {
    error.code: error for error in (RequestTooLargeException, InvalidRequestContentException)
}
_INVOCATION_TYPES = (InvocationType.REQUEST_RESPONSE, InvocationType.EVENT, DRY_RUN)
# Payloads are JSON; clients send them untyped, as JSON, as bytes or as text.
_ACCEPTED_MEDIA_TYPES = frozenset(
    {"", "application/json", "application/octet-stream", "binary/octet-stream", "text/plain"}
)


def _invocation_type(call: ApiCall) -> str:
    value = call.request.headers.get("X-Amz-Invocation-Type") or InvocationType.REQUEST_RESPONSE
    if value not in _INVOCATION_TYPES:
        raise InvalidParameterValueException(
            validation_message(value, "invocationType", "Event|RequestResponse|DryRun")
        )
    return value


def _log_type(call: ApiCall) -> str:
    value = call.request.headers.get("X-Amz-Log-Type") or "None"
    if value not in ("None", "Tail"):
        raise InvalidParameterValueException(validation_message(value, "logType", "None|Tail"))
    return value


def _check_media_type(call: ApiCall) -> None:
    content_type = call.request.headers.get("Content-Type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _ACCEPTED_MEDIA_TYPES or media_type.endswith("+json"):
        return
    if media_type.startswith("application/x-amz-json"):
        return
    raise UnsupportedMediaTypeException(
        f"The payload's content type {media_type!r} is not supported: send JSON."
    )


def _client_context(call: ApiCall) -> str:
    """The decoded ClientContext JSON, which the function's runtime receives."""
    encoded = call.request.headers.get("X-Amz-Client-Context") or ""
    if not encoded:
        return ""
    if len(encoded.encode()) > CLIENT_CONTEXT_MAX_BYTES:
        raise InvalidParameterValueException(
            f"Client context must be {CLIENT_CONTEXT_MAX_BYTES} bytes or fewer, base64-encoded."
        )
    try:
        text = base64.b64decode(encoded, validate=True).decode()
        if not isinstance(json.loads(text), dict):
            raise ValueError("not an object")
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameterValueException(
            "Client context must be a valid Base64-encoded JSON object."
        ) from exc
    return text


def log_tail(lines: list[str]) -> str:
    """The last 4 KB of the invocation's log, base64-encoded, for X-Amz-Log-Result."""
    text = "".join(line if line.endswith("\n") else f"{line}\n" for line in lines)
    return base64.b64encode(text.encode()[-LOG_TAIL_BYTES:]).decode()


def invoke(call: ApiCall, function_name: str) -> HttpResponse:
    ref = call.function_ref(function_name)
    invocation_type = _invocation_type(call)
    log_type = _log_type(call)
    _check_media_type(call)
    client_context = _client_context(call)
    function = call.function(ref)
    version = published_version(function, ref)
    qualifier = ref.qualifier or LATEST
    if function.state != FunctionState.ACTIVE:
        raise ResourceConflictException(
            "The operation cannot be performed at this time. The function is currently in "
            f"the following state: {function.state}"
        )
    if invocation_type == DRY_RUN:
        response = HttpResponse(status=204)
        response["X-Amz-Executed-Version"] = LATEST if version is None else str(version.version)
        return response
    try:
        invocation = invocation_submit(
            function=function,
            payload=call.body,
            invocation_type=invocation_type,
            source="api",
            client_context=client_context
            if invocation_type == InvocationType.REQUEST_RESPONSE
            else "",
            qualifier=qualifier,
        )
    except Throttled as exc:
        raise _throttled(exc.reason, exc.retry_after) from exc
    except InvocationRejected as exc:
        raise _rejection(exc) from exc
    except VersionNotFound as exc:
        # Deleted between the look-up above and the submission.
        raise ref.not_found() from exc
    if invocation_type == InvocationType.EVENT:
        response = HttpResponse(status=202)
        response[REQUEST_ID_HEADER] = str(invocation.request_id)
        return response
    try:
        invocation = invocation_wait(invocation=invocation)
    except InvocationLost as exc:
        raise ServiceException(exc.message) from exc
    except InvocationWaitTimeout as exc:
        raise ServiceException(
            f"The invocation {invocation.request_id} did not finish in time; it is still "
            "being processed."
        ) from exc
    if invocation.error_type == THROTTLED_ERROR_TYPE:
        # No execution environment could be had in time: the platform's own concurrency
        # limit, so nothing ran and the caller may retry.
        raise _throttled(ThrottleReason.ACCOUNT, RETRY_AFTER_SECONDS)
    if invocation.error_type == ServiceException.code and not invocation.log_stream_name:
        # Stratus failed, not the function (it never ran, or its worker died): Lambda
        # answers that with a 500, not with a function error.
        raise ServiceException(invocation.error_message)
    response = HttpResponse(invocation.response.encode(), content_type="application/json")
    response[REQUEST_ID_HEADER] = str(invocation.request_id)
    response["X-Amz-Executed-Version"] = invocation.executed_version
    if invocation.status == InvocationStatus.FAILED:
        response["X-Amz-Function-Error"] = "Unhandled"
    if log_type == "Tail":
        response["X-Amz-Log-Result"] = log_tail(invocation_log_messages(invocation=invocation))
    return response


def _throttled(reason: str, retry_after: int) -> TooManyRequestsException:
    return TooManyRequestsException(
        THROTTLE_MESSAGE, reason=reason, retry_after_seconds=retry_after
    )


def _rejection(exc: InvocationRejected) -> ApiError:
    error_class = _REJECTIONS.get(exc.code, InvalidRequestContentException)
    return error_class(exc.message)
