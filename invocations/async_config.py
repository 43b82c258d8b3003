"""Asynchronous invocation settings of a function's qualifiers (EventInvokeConfig): reads,
and writes that check every value first, for the API and the console alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from console.selectors import account_for_user
from functions.destinations import DESTINATION_ARN_MAX, parse_function_target
from functions.models import Function
from invocations.models import EventInvokeConfig

LATEST = "$LATEST"
RETRY_ATTEMPTS_RANGE = (0, 2)
EVENT_AGE_RANGE = (60, 21600)
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_EVENT_AGE = 21600
# Keeps a setting as it is (UpdateFunctionEventInvokeConfig); None removes it.
UNCHANGED: Any = object()
_FIELDS = ("maximum_retry_attempts", "maximum_event_age_in_seconds", "on_success", "on_failure")


@dataclass(frozen=True)
class AsyncPolicy:
    """What happens to one qualifier's asynchronous events: its settings with Lambda's
    defaults filled in, and the function's dead-letter target."""

    maximum_retry_attempts: int
    maximum_event_age_in_seconds: int
    on_success: str
    on_failure: str
    dead_letter_target: str


def event_invoke_config_get(*, function: Function, qualifier: str) -> EventInvokeConfig | None:
    return EventInvokeConfig.objects.filter(function=function, qualifier=qualifier).first()


def event_invoke_config_list(*, function: Function) -> QuerySet[EventInvokeConfig]:
    return EventInvokeConfig.objects.filter(function=function).order_by("qualifier")


def async_policy(*, function_id: int, qualifier: str) -> AsyncPolicy:
    config = EventInvokeConfig.objects.filter(function_id=function_id, qualifier=qualifier).first()
    dead_letter = (
        Function.objects.filter(pk=function_id)
        .values_list("dead_letter_target_arn", flat=True)
        .first()
    )
    retries = config.maximum_retry_attempts if config else None
    age = config.maximum_event_age_in_seconds if config else None
    return AsyncPolicy(
        maximum_retry_attempts=DEFAULT_RETRY_ATTEMPTS if retries is None else retries,
        maximum_event_age_in_seconds=DEFAULT_EVENT_AGE if age is None else age,
        on_success=config.on_success if config else "",
        on_failure=config.on_failure if config else "",
        dead_letter_target=dead_letter or "",
    )


def _range_error(value: int, bounds: tuple[int, int], label: str) -> str | None:
    low, high = bounds
    return None if low <= value <= high else f"{label} must be between {low} and {high}."


def target_problem(*, function: Function, arn: str) -> str | None:
    """Why an ARN cannot receive the function's invocation records, or None."""
    if len(arn) > DESTINATION_ARN_MAX:
        return f"The destination ARN must be {DESTINATION_ARN_MAX} characters or fewer."
    try:
        target = parse_function_target(arn)
    except ValidationError as exc:
        return " ".join(exc.messages)
    account_id = account_for_user(function.owner).account_id
    if target.account_id != account_id or target.region != settings.STRATUS_REGION:
        return f"The destination ARN {arn} is invalid: it is not a function of this account."
    if target.name == function.name:
        return "You can't specify the function as a destination for itself."
    if not Function.objects.filter(owner_id=function.owner_id, name=target.name).exists():
        return f"The destination ARN {arn} is invalid: function {target.name} does not exist."
    return None


def _validate(function: Function, values: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    retries = values.get("maximum_retry_attempts")
    if retries is not None:
        problem = _range_error(retries, RETRY_ATTEMPTS_RANGE, "Retry attempts")
        if problem:
            errors["maximum_retry_attempts"] = [problem]
    age = values.get("maximum_event_age_in_seconds")
    if age is not None:
        problem = _range_error(
            age, EVENT_AGE_RANGE, "Maximum age of event (1 minute to 6 hours) in seconds"
        )
        if problem:
            errors["maximum_event_age_in_seconds"] = [problem]
    for field in ("on_success", "on_failure"):
        arn = values.get(field) or ""
        if arn:
            problem = target_problem(function=function, arn=arn)
            if problem:
                errors[field] = [problem]
    if errors:
        raise ValidationError(errors)


def event_invoke_config_put(
    *,
    function: Function,
    qualifier: str = LATEST,
    maximum_retry_attempts: int | None = None,
    maximum_event_age_in_seconds: int | None = None,
    on_success: str = "",
    on_failure: str = "",
) -> EventInvokeConfig:
    """Replace the qualifier's settings: what is not given is removed (Lambda's defaults)."""
    values: dict[str, Any] = {
        "maximum_retry_attempts": maximum_retry_attempts,
        "maximum_event_age_in_seconds": maximum_event_age_in_seconds,
        "on_success": on_success or "",
        "on_failure": on_failure or "",
    }
    _validate(function, values)
    with transaction.atomic():
        config, _ = EventInvokeConfig.objects.update_or_create(
            function=function,
            qualifier=qualifier,
            defaults={**values, "last_modified": timezone.now()},
        )
    return config


def event_invoke_config_update(*, config: EventInvokeConfig, **changes: Any) -> EventInvokeConfig:
    """Change the named settings and keep the others (UNCHANGED values are skipped)."""
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise TypeError(f"Not an event invoke setting: {sorted(unknown)}")
    given = {name: value for name, value in changes.items() if value is not UNCHANGED}
    for name in ("on_success", "on_failure"):
        if name in given and given[name] is None:
            given[name] = ""
    _validate(config.function, given)
    with transaction.atomic():
        locked = EventInvokeConfig.objects.select_for_update().get(pk=config.pk)
        for name, value in given.items():
            setattr(locked, name, value)
        locked.last_modified = timezone.now()
        locked.save()
    locked.function = config.function
    return locked


def event_invoke_config_delete(*, config: EventInvokeConfig) -> None:
    config.delete()


def destination_set(
    *, function: Function, qualifier: str, condition: str, destination: str
) -> EventInvokeConfig:
    """Add or replace the on-success ("success") or on-failure ("failure") destination of a
    qualifier, creating its settings with the defaults when it has none."""
    on_success = destination if condition == "success" else UNCHANGED
    on_failure = destination if condition != "success" else UNCHANGED
    config = event_invoke_config_get(function=function, qualifier=qualifier)
    if config is None:
        return event_invoke_config_put(
            function=function,
            qualifier=qualifier,
            on_success="" if on_success is UNCHANGED else on_success,
            on_failure="" if on_failure is UNCHANGED else on_failure,
        )
    config.function = function
    return event_invoke_config_update(config=config, on_success=on_success, on_failure=on_failure)


def destination_remove(*, function: Function, qualifier: str, condition: str) -> None:
    config = event_invoke_config_get(function=function, qualifier=qualifier)
    if config is None:
        return
    config.function = function
    field = "on_success" if condition == "success" else "on_failure"
    event_invoke_config_update(config=config, **{field: ""})


def async_settings_save(
    *,
    function: Function,
    qualifier: str,
    maximum_retry_attempts: int,
    maximum_event_age_in_seconds: int,
    dead_letter_target_arn: str | None = None,
) -> EventInvokeConfig:
    """The console's Asynchronous invocation form: retries and age for the qualifier (its
    destinations kept) and, when given, the function's dead-letter target, all or nothing."""
    from functions.services import function_update_configuration

    if dead_letter_target_arn:
        problem = target_problem(function=function, arn=dead_letter_target_arn)
        if problem:
            raise ValidationError({"dead_letter_target_arn": [problem]})
    with transaction.atomic():
        config = event_invoke_config_get(function=function, qualifier=qualifier)
        if config is None:
            config = event_invoke_config_put(
                function=function,
                qualifier=qualifier,
                maximum_retry_attempts=maximum_retry_attempts,
                maximum_event_age_in_seconds=maximum_event_age_in_seconds,
            )
        else:
            config.function = function
            config = event_invoke_config_update(
                config=config,
                maximum_retry_attempts=maximum_retry_attempts,
                maximum_event_age_in_seconds=maximum_event_age_in_seconds,
            )
        if (
            dead_letter_target_arn is not None
            and dead_letter_target_arn != function.dead_letter_target_arn
        ):
            function_update_configuration(
                function=function, dead_letter_target_arn=dead_letter_target_arn
            )
    return config
