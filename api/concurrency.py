"""Reserved and provisioned concurrency through the API: the shared services, with their
errors as Lambda answers them. The invocation engine enforces both (invocations.concurrency,
invocations.provisioning)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from api.errors import ApiError, InvalidParameterValueException
from api.locks import function_locked
from api.names import FunctionRef
from functions import concurrency_services
from functions.models import Function, ProvisionedConcurrencyConfig


def _api_error(exc: ValidationError, ref: FunctionRef) -> ApiError:
    if exc.code == "not_found":
        return ref.not_found()
    return InvalidParameterValueException(exc.messages[0])


def function_concurrency_put(*, function: Function, ref: FunctionRef, reserved: int) -> None:
    with function_locked(function, ref, None) as locked:
        try:
            concurrency_services.function_reserve_concurrency(function=locked, reserved=reserved)
        except ValidationError as exc:
            raise _api_error(exc, ref) from exc


def function_concurrency_delete(*, function: Function, ref: FunctionRef) -> None:
    with function_locked(function, ref, None) as locked:
        concurrency_services.function_unreserve_concurrency(function=locked)


def provisioned_config_put(
    *, function: Function, ref: FunctionRef, qualifier: str, requested: int
) -> ProvisionedConcurrencyConfig:
    try:
        return concurrency_services.provisioned_config_put(
            function=function, qualifier=qualifier, requested=requested
        )
    except ValidationError as exc:
        raise _api_error(exc, ref) from exc


def provisioned_config_delete(*, function: Function, ref: FunctionRef, qualifier: str) -> bool:
    try:
        return concurrency_services.provisioned_config_delete(
            function=function, qualifier=qualifier
        )
    except ValidationError as exc:
        raise _api_error(exc, ref) from exc
