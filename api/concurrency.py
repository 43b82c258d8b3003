"""Reserved concurrency: stored and reported by the API; enforcing it is the invocation
engine's part."""

from __future__ import annotations

from django.db.models import Sum

from api.errors import InvalidParameterValueException
from api.locks import function_locked
from api.names import FunctionRef
from functions.models import Function

ACCOUNT_CONCURRENCY_LIMIT = 1000
# Lambda keeps this much of the account's concurrency unreserved.
MIN_UNRESERVED_CONCURRENCY = 100


def function_concurrency_put(*, function: Function, ref: FunctionRef, reserved: int) -> None:
    """Reserve concurrency for the function (stored; enforced by a later engine change)."""
    if reserved < 0:
        raise InvalidParameterValueException(
            "1 validation error detected: Value "
            f"'{reserved}' at 'reservedConcurrentExecutions' failed to satisfy constraint: "
            "Member must have value greater than or equal to 0"
        )
    with function_locked(function, ref, None) as locked:
        others = (
            Function.objects.filter(owner_id=locked.owner_id)
            .exclude(pk=locked.pk)
            .aggregate(total=Sum("reserved_concurrency"))["total"]
            or 0
        )
        if ACCOUNT_CONCURRENCY_LIMIT - others - reserved < MIN_UNRESERVED_CONCURRENCY:
            raise InvalidParameterValueException(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                "UnreservedConcurrentExecution below its minimum value of "
                f"[{MIN_UNRESERVED_CONCURRENCY}]."
            )
        Function.objects.filter(pk=locked.pk).update(reserved_concurrency=reserved)


def function_concurrency_delete(*, function: Function, ref: FunctionRef) -> None:
    with function_locked(function, ref, None) as locked:
        Function.objects.filter(pk=locked.pk).update(reserved_concurrency=None)
