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


class InvocationLost(InvocationRejected):
    """The record of a synchronous invocation vanished before it ran: a database crash lost
    its insert (committed without waiting for the WAL, as a waiting caller's is)."""

    code = "ServiceException"
    status = 500


class InvocationWaitTimeout(Exception):
    """The caller stopped waiting; the invocation itself goes on and will be recorded."""


class VersionNotFound(Exception):
    """The qualifier names no published version of the function."""

    def __init__(self, function_name: str, qualifier: str) -> None:
        super().__init__(f"Function {function_name} has no version {qualifier}.")
        self.function_name = function_name
        self.qualifier = qualifier
