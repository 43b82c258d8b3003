"""Why an invocation request was refused before it was accepted."""

from __future__ import annotations


class InvocationRejected(Exception):
    """The request was not accepted; nothing was recorded. `code` is Lambda's error name."""

    code = "InvalidRequestContentException"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestContent(InvocationRejected):
    code = "InvalidRequestContentException"
    status = 400


class RequestTooLarge(InvocationRejected):
    code = "RequestTooLargeException"
    status = 413


class InvocationWaitTimeout(Exception):
    """The caller stopped waiting; the invocation itself goes on and will be recorded."""
