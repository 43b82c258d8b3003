"""Lambda's errors as the API returns them: the error name in `x-amzn-ErrorType`, a JSON body
with `Type` ("User" for the caller's faults, "Service" for ours) and the message under the
member name botocore's model gives the exception (some use `Message`, most `message`)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.http import HttpResponse


class ApiError(Exception):
    code: ClassVar[str] = "ServiceException"
    status: ClassVar[int] = 500
    message_member: ClassVar[str] = "Message"

    def __init__(self, message: str, **members: Any) -> None:
        super().__init__(message)
        self.message = message
        self.members = members
        self.headers: dict[str, str] = {}

    @property
    def error_type(self) -> str:
        return "Service" if self.status >= 500 else "User"

    def response(self) -> HttpResponse:
        body = {"Type": self.error_type, self.message_member: self.message, **self.members}
        response = HttpResponse(
            json.dumps(body), status=self.status, content_type="application/json"
        )
        response["x-amzn-ErrorType"] = self.code
        for name, value in self.headers.items():
            response[name] = value
        return response


class ServiceException(ApiError):
    code = "ServiceException"
    status = 500


class ResourceNotFoundException(ApiError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceConflictException(ApiError):
    code = "ResourceConflictException"
    status = 409
    message_member = "message"


class InvalidParameterValueException(ApiError):
    code = "InvalidParameterValueException"
    status = 400
    message_member = "message"


class InvalidRequestContentException(ApiError):
    code = "InvalidRequestContentException"
    status = 400
    message_member = "message"


class RequestTooLargeException(ApiError):
    code = "RequestTooLargeException"
    status = 413
    message_member = "message"


class UnsupportedMediaTypeException(ApiError):
    code = "UnsupportedMediaTypeException"
    status = 415
    message_member = "message"


class PreconditionFailedException(ApiError):
    code = "PreconditionFailedException"
    status = 412
    message_member = "message"


class TooManyRequestsException(ApiError):
    """Throttling. `reason` is one of Lambda's Reason values, e.g.
    ReservedFunctionConcurrentInvocationLimitExceeded."""

    code = "TooManyRequestsException"
    status = 429
    message_member = "message"

    def __init__(self, message: str, *, reason: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message, Reason=reason)
        # botocore's model reads retryAfterSeconds from this header.
        self.headers["Retry-After"] = str(retry_after_seconds)


# Operations Stratus does not implement, and paths that name no operation at all.
class UnsupportedOperationException(ApiError):
    code = "UnsupportedOperationException"
    status = 501
    message_member = "message"


class UnknownOperationException(ApiError):
    code = "UnknownOperationException"
    status = 404
    message_member = "message"


# Authentication failures: all 403, as AWS answers them.
class AuthenticationError(ApiError):
    status = 403
    message_member = "message"


class MissingAuthenticationTokenException(AuthenticationError):
    code = "MissingAuthenticationTokenException"


class IncompleteSignatureException(AuthenticationError):
    code = "IncompleteSignatureException"


class InvalidSignatureException(AuthenticationError):
    code = "InvalidSignatureException"


class UnrecognizedClientException(AuthenticationError):
    code = "UnrecognizedClientException"


SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
INVALID_SECURITY_TOKEN = "The security token included in the request is invalid."
