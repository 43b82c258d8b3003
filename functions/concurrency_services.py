"""Reserved and provisioned concurrency: the checks and writes the API and the console's
Concurrency page share. Errors are ValidationErrors whose code says what went wrong."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from functions.models import (
    Function,
    ProvisionedConcurrencyConfig,
    ProvisionedConcurrencyStatus,
)
from functions.selectors import function_alias_get, function_version_get
from invocations.concurrency import (
    account_concurrency_limit,
    forget_reserved_sum,
    reserved_sum,
)
from invocations.provisioning import ensure_embedded_reconciler

# Lambda keeps this much of an account's concurrency for functions without a reservation.
MIN_UNRESERVED_CONCURRENCY = 100
LATEST = "$LATEST"

UNPUBLISHED_MESSAGE = (
    "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
)


@dataclass(frozen=True)
class AccountConcurrency:
    limit: int
    reserved: int

    @property
    def unreserved(self) -> int:
        return max(0, self.limit - self.reserved)


def account_concurrency(*, owner_id: int) -> AccountConcurrency:
    return AccountConcurrency(
        limit=account_concurrency_limit(), reserved=reserved_sum(owner_id, fresh=True)
    )


def max_reservable(*, function: Function) -> int:
    """The most this function may reserve: all the account's concurrency not reserved by
    its other functions, less the unreserved minimum."""
    others = _reserved_by_others(function)
    return max(0, account_concurrency_limit() - others - MIN_UNRESERVED_CONCURRENCY)


def _reserved_by_others(function: Function) -> int:
    return (
        Function.objects.filter(owner_id=function.owner_id)
        .exclude(pk=function.pk)
        .aggregate(total=Sum("reserved_concurrency"))["total"]
        or 0
    )


def function_reserve_concurrency(*, function: Function, reserved: int) -> None:
    """Reserve `reserved` concurrent executions for the function (0 throttles it)."""
    if reserved < 0:
        raise ValidationError(
            "1 validation error detected: Value "
            f"'{reserved}' at 'reservedConcurrentExecutions' failed to satisfy constraint: "
            "Member must have value greater than or equal to 0",
            code="invalid",
        )
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=function.pk)
        others = _reserved_by_others(locked)
        if account_concurrency_limit() - others - reserved < MIN_UNRESERVED_CONCURRENCY:
            raise ValidationError(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                "UnreservedConcurrentExecution below its minimum value of "
                f"[{MIN_UNRESERVED_CONCURRENCY}].",
                code="unreserved_minimum",
            )
        Function.objects.filter(pk=locked.pk).update(reserved_concurrency=reserved)
    forget_reserved_sum(function.owner_id)
    function.reserved_concurrency = reserved


def function_unreserve_concurrency(*, function: Function) -> None:
    Function.objects.filter(pk=function.pk).update(reserved_concurrency=None)
    forget_reserved_sum(function.owner_id)
    function.reserved_concurrency = None


def _check_qualifier(function: Function, qualifier: str) -> None:
    if qualifier == LATEST:
        raise ValidationError(UNPUBLISHED_MESSAGE, code="unpublished")
    found = (
        function_version_get(function=function, version=qualifier)
        if qualifier.isdigit()
        else function_alias_get(function=function, name=qualifier)
    )
    if found is None:
        raise ValidationError(f"No version or alias {qualifier}.", code="not_found")


def provisioned_config_get(
    *, function: Function, qualifier: str
) -> ProvisionedConcurrencyConfig | None:
    return ProvisionedConcurrencyConfig.objects.filter(
        function=function, qualifier=qualifier
    ).first()


def provisioned_config_list(*, function: Function) -> list[ProvisionedConcurrencyConfig]:
    configs = sorted(
        ProvisionedConcurrencyConfig.objects.filter(function=function), key=_qualifier_order
    )
    if configs:
        _keep_environments_ready()
    return configs


def _qualifier_order(config: ProvisionedConcurrencyConfig) -> tuple[bool, int, str]:
    # Versions in number order, then aliases by name.
    is_version = config.qualifier.isdigit()
    return (not is_version, int(config.qualifier) if is_version else 0, config.qualifier)


def provisioned_config_put(
    *, function: Function, qualifier: str, requested: int
) -> ProvisionedConcurrencyConfig:
    """Ask for `requested` initialised environments for a version or alias; the workers
    start them and mark the configuration READY."""
    if requested < 1:
        raise ValidationError(
            "1 validation error detected: Value "
            f"'{requested}' at 'provisionedConcurrentExecutions' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
            code="invalid",
        )
    _check_qualifier(function, qualifier)
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=function.pk)
        others = (
            ProvisionedConcurrencyConfig.objects.filter(function=locked)
            .exclude(qualifier=qualifier)
            .aggregate(total=Sum("requested"))["total"]
            or 0
        )
        total = others + requested
        if locked.reserved_concurrency is not None:
            if total > locked.reserved_concurrency:
                raise ValidationError(
                    f"Requested Provisioned Concurrency ({total} for the function in all) "
                    "should not be greater than the reservedConcurrentExecution for the "
                    f"function ({locked.reserved_concurrency}).",
                    code="over_reserved",
                )
        else:
            available = account_concurrency_limit() - reserved_sum(locked.owner_id, fresh=True)
            if total > available - MIN_UNRESERVED_CONCURRENCY:
                raise ValidationError(
                    f"Requested Provisioned Concurrency ({total} for the function in all) "
                    "would decrease the account's UnreservedConcurrentExecution below its "
                    f"minimum value of [{MIN_UNRESERVED_CONCURRENCY}].",
                    code="unreserved_minimum",
                )
        config, _ = ProvisionedConcurrencyConfig.objects.update_or_create(
            function=locked,
            qualifier=qualifier,
            defaults={
                "requested": requested,
                "status": ProvisionedConcurrencyStatus.IN_PROGRESS,
                "status_reason": "",
                "last_modified": timezone.now(),
            },
        )
    _keep_environments_ready()
    return config


def provisioned_config_delete(*, function: Function, qualifier: str) -> bool:
    """Remove the configuration; the workers stop its environments. False if there was none."""
    if qualifier == LATEST:
        raise ValidationError(UNPUBLISHED_MESSAGE, code="unpublished")
    deleted, _ = ProvisionedConcurrencyConfig.objects.filter(
        function=function, qualifier=qualifier
    ).delete()
    return bool(deleted)


def _keep_environments_ready() -> None:
    # Without a broker the web process runs the invocations and keeps their environments:
    # its reconciler starts the first time provisioned concurrency is set or looked at.
    ensure_embedded_reconciler()
