"""Saved test events: reads scoped to what a user may see, and the writes behind the Test
tab's Save, Rename and Delete.

Private events belong to their creator alone; shareable ones are visible to, and editable
by, everyone who can see the function. Callers pass a function the user may see (from
`functions.selectors.function_get_for_user`)."""

from __future__ import annotations

import json
import re
from typing import TypeAlias

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import Http404

from functions.models import Function
from invocations.models import TestEvent

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,25}")
MAX_PRIVATE_EVENTS = 10
# Lambda's synchronous payload limit: a saved event bigger than this could never be run.
MAX_PAYLOAD_BYTES = 6_291_456

User: TypeAlias = AbstractBaseUser | AnonymousUser

# The `test_event_*` services match pytest's collection pattern when a test imports them.
__test__ = False


def test_event_list_for_user(*, user: User, function: Function) -> QuerySet[TestEvent]:
    """The user's own private events and every shareable event of the function."""
    return (
        TestEvent.objects.filter(function=function)
        .filter(Q(shareable=True) | Q(owner_id=user.pk))
        .order_by("name", "shareable", "pk")
    )


def test_event_get_for_user(*, user: User, function: Function, pk: int) -> TestEvent:
    try:
        return test_event_list_for_user(user=user, function=function).get(pk=pk)
    except TestEvent.DoesNotExist as exc:
        raise Http404("Test event not found") from exc


def payload_error(payload: str) -> str | None:
    """Why the payload cannot be saved as an event, or None when it is fine."""
    if len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        return f"Event JSON must be smaller than {MAX_PAYLOAD_BYTES} bytes (6 MB)."
    try:
        json.loads(payload)
    except json.JSONDecodeError as exc:
        return f"Event JSON is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    return None


def name_error(name: str) -> str | None:
    if not name:
        return "Enter an event name."
    if not NAME_PATTERN.fullmatch(name):
        return (
            "Event name must be 1 to 25 characters long and contain only letters, numbers, "
            "periods (.), hyphens (-) and underscores (_)."
        )
    return None


def _ensure_editable(*, user: User, event: TestEvent) -> None:
    if not event.shareable and event.owner_id != user.pk:
        raise PermissionDenied("Private test events can only be changed by their creator.")


def _name_taken(*, user: User, function: Function, name: str, exclude_pk: int | None) -> bool:
    events = test_event_list_for_user(user=user, function=function).filter(name=name)
    if exclude_pk is not None:
        events = events.exclude(pk=exclude_pk)
    return events.exists()


def _taken_message(name: str) -> str:
    return f"A test event named {name} already exists. Choose another name."


def test_event_save(
    *,
    user: AbstractBaseUser,
    function: Function,
    name: str,
    payload: str,
    shareable: bool,
    event: TestEvent | None = None,
) -> TestEvent:
    """Create a test event, or overwrite `event` (its name, payload and sharing).

    Raises ValidationError keyed by field (`name`, `payload`, `shareable`, or `__all__` for
    the private-event limit)."""
    if event is not None:
        if event.function_id != function.pk:
            raise Http404("Test event not found")
        _ensure_editable(user=user, event=event)

    errors: dict[str, list[str]] = {}
    if message := name_error(name):
        errors["name"] = [message]
    elif _name_taken(
        user=user, function=function, name=name, exclude_pk=event.pk if event else None
    ):
        errors["name"] = [_taken_message(name)]
    if message := payload_error(payload):
        errors["payload"] = [message]
    if event is not None and event.shareable != shareable and event.owner_id != user.pk:
        errors["shareable"] = ["Only the creator of this event can change its sharing setting."]
    becomes_private = not shareable and (event is None or event.shareable)
    if becomes_private and (
        TestEvent.objects.filter(function=function, owner_id=user.pk, shareable=False).count()
        >= MAX_PRIVATE_EVENTS
    ):
        errors[NON_FIELD_ERRORS] = [
            f"You can save up to {MAX_PRIVATE_EVENTS} private test events for this function. "
            "Delete one of them, or save this event as shareable."
        ]
    if errors:
        raise ValidationError(errors)

    if event is None:
        event = TestEvent(function=function, owner_id=user.pk)
    event.name = name
    event.payload = payload
    event.shareable = shareable
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError as exc:
        raise ValidationError({"name": [_taken_message(name)]}) from exc
    return event


def test_event_rename(*, user: AbstractBaseUser, event: TestEvent, name: str) -> TestEvent:
    _ensure_editable(user=user, event=event)
    if message := name_error(name):
        raise ValidationError({"name": [message]})
    if _name_taken(user=user, function=event.function, name=name, exclude_pk=event.pk):
        raise ValidationError({"name": [_taken_message(name)]})
    event.name = name
    try:
        with transaction.atomic():
            event.save(update_fields=["name", "updated_at"])
    except IntegrityError as exc:
        raise ValidationError({"name": [_taken_message(name)]}) from exc
    return event


def test_event_delete(*, user: AbstractBaseUser, event: TestEvent) -> None:
    _ensure_editable(user=user, event=event)
    event.delete()
