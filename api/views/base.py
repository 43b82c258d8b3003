"""What every API request goes through: the body read within the operation's limit, the
signature verified, the operation chosen by method, and any failure answered the AWS way."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from api.auth import Caller, authenticate
from api.errors import (
    ApiError,
    InvalidRequestContentException,
    RequestTooLargeException,
    ServiceException,
)
from api.names import FunctionRef, function_name_in, parse_function_name
from api.params import Params
from api.selectors import function_for_owner
from api.unsupported import unsupported
from console.middleware import LAMBDA_API_VIEW
from functions.models import Function

logger = logging.getLogger(__name__)

# Control-plane requests carry configuration, not code or payloads.
DEFAULT_MAX_BODY = 1024 * 1024
REQUEST_ID_HEADER = "x-amzn-RequestId"


@dataclass(frozen=True)
class ApiCall:
    """One authenticated API request."""

    request: HttpRequest
    body: bytes
    caller: Caller
    request_id: str

    def params(self) -> Params:
        return Params.from_body(self.body)

    def query(self, name: str) -> str | None:
        return self.request.GET.get(name)

    def function_ref(self, function_name: str) -> FunctionRef:
        return parse_function_name(
            function_name,
            account_id=self.caller.account_id,
            query_qualifier=self.query("Qualifier"),
        )

    def function(self, ref: FunctionRef) -> Function:
        """The caller's function; another user's is as missing as one never created."""
        if self.caller.function_name == ref.name:
            function = self.caller.function
        else:
            function = function_for_owner(owner_id=self.caller.user_id, name=ref.name)
        if function is None:
            raise ref.not_found()
        return function


Handler = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Handler
    max_body: int = DEFAULT_MAX_BODY
    # The name Lambda uses in its "request too large" message, when it differs.
    limit_label: str = ""


def json_response(data: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(data), status=status, content_type="application/json")


def no_content() -> HttpResponse:
    return HttpResponse(status=204)


def read_body(request: HttpRequest, operation: Operation | None) -> bytes:
    limit = operation.max_body if operation else DEFAULT_MAX_BODY
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise InvalidRequestContentException("The Content-Length header is not a number.") from exc
    if length > limit:
        label = (operation.limit_label or operation.name) if operation else "API"
        raise RequestTooLargeException(
            f"Request must be smaller than {limit} bytes for the {label} operation"
        )
    return request.read() if length > 0 else b""


def endpoint(**operations: Operation) -> Callable[..., HttpResponse]:
    """A view answering one API path, with an operation per HTTP method. Methods without
    one (and paths without any) get the AWS-shaped "unsupported" error."""

    @csrf_exempt
    @login_not_required
    def view(request: HttpRequest, **path_params: str) -> HttpResponse:
        request_id = str(uuid.uuid4())
        operation = operations.get(request.method or "")
        try:
            body = read_body(request, operation)
            caller = authenticate(
                request, body, function_name=function_name_in(path_params.get("function_name"))
            )
            if operation is None:
                raise unsupported(request.method or "", request.path_info, set(request.GET))
            call = ApiCall(request=request, body=body, caller=caller, request_id=request_id)
            response = operation.handler(call, **path_params)
        except ApiError as exc:
            response = exc.response()
        except Exception:
            logger.exception("%s %s failed", request.method, request.path_info)
            response = ServiceException("An internal error occurred. Try again later.").response()
        if REQUEST_ID_HEADER not in response:
            response[REQUEST_ID_HEADER] = request_id
        return response

    setattr(view, LAMBDA_API_VIEW, True)
    return view
