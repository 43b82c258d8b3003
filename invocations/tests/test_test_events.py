from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import Http404

# Imported as modules: the services' `test_event_*` names and the TestEvent model would
# otherwise be collected by pytest as tests.
from functions.services import function_create
from invocations import models as invocation_models
from invocations import saved_events

pytestmark = pytest.mark.django_db

HELLO = '{\n  "key1": "value1"\n}'


@pytest.fixture
def function(user):
    return function_create(owner=user, name="my-function", role=None)


@pytest.fixture
def teammate(db):
    # Staff can see every function, so they share its shareable events with the owner.
    return User.objects.create_user(username="carol", password="x", is_staff=True)


def save(user, function, name, payload=HELLO, *, shareable=False, event=None):
    return saved_events.test_event_save(
        user=user, function=function, name=name, payload=payload, shareable=shareable, event=event
    )


def names(user, function):
    return [e.name for e in saved_events.test_event_list_for_user(user=user, function=function)]


def test_save_creates_a_private_event_for_its_creator_only(user, teammate, function):
    event = save(user, function, "MyEvent")

    assert event.pk is not None and event.owner_id == user.pk and not event.shareable
    assert event.payload == HELLO
    assert names(user, function) == ["MyEvent"]
    assert names(teammate, function) == []


def test_save_with_an_event_overwrites_it(user, function):
    event = save(user, function, "MyEvent")

    saved = save(user, function, "MyEvent", '{"key1": "changed"}', event=event)

    assert saved.pk == event.pk
    assert invocation_models.TestEvent.objects.get(pk=event.pk).payload == '{"key1": "changed"}'
    assert invocation_models.TestEvent.objects.count() == 1


def test_a_name_already_used_is_refused(user, function):
    save(user, function, "MyEvent")

    with pytest.raises(ValidationError) as excinfo:
        save(user, function, "MyEvent", "{}")

    assert "A test event named MyEvent already exists" in excinfo.value.message_dict["name"][0]


@pytest.mark.parametrize(
    "bad_name", ["", "has space", "a" * 26, "slash/name", "émoji", "semi;colon"]
)
def test_bad_names_are_refused_at_the_name_field(user, function, bad_name):
    with pytest.raises(ValidationError) as excinfo:
        save(user, function, bad_name)

    assert set(excinfo.value.message_dict) == {"name"}
    assert not invocation_models.TestEvent.objects.exists()


def test_names_allow_letters_digits_dots_hyphens_underscores_up_to_25(user, function):
    event = save(user, function, "Az09._-" + "x" * 18)

    assert len(event.name) == 25


def test_invalid_json_is_refused_with_line_and_column(user, function):
    with pytest.raises(ValidationError) as excinfo:
        save(user, function, "Broken", '{\n  "key1": "value1",\n}')

    message = excinfo.value.message_dict["payload"][0]
    assert message.startswith("Event JSON is not valid JSON:")
    assert "(line 3, column 1)" in message


def test_payload_over_6_mb_is_refused(user, function):
    payload = '"' + "x" * saved_events.MAX_PAYLOAD_BYTES + '"'

    with pytest.raises(ValidationError) as excinfo:
        save(user, function, "Huge", payload)

    assert "smaller than 6291456 bytes" in excinfo.value.message_dict["payload"][0]


def test_at_most_ten_private_events_per_user_per_function(user, teammate, function):
    for number in range(saved_events.MAX_PRIVATE_EVENTS):
        save(user, function, f"event{number}")

    with pytest.raises(ValidationError) as excinfo:
        save(user, function, "one-too-many")

    message = excinfo.value.message_dict[NON_FIELD_ERRORS][0]
    assert "up to 10 private test events" in message
    assert save(user, function, "shared", shareable=True).shareable
    # The limit is per user: a teammate still has room of their own.
    assert save(teammate, function, "mine").owner_id == teammate.pk


def test_shareable_events_are_visible_and_editable_by_everyone_who_sees_the_function(
    user, teammate, function
):
    shared = save(user, function, "shared", shareable=True)
    save(teammate, function, "carols-own")

    assert names(teammate, function) == ["carols-own", "shared"]
    assert names(user, function) == ["shared"]

    save(teammate, function, "shared", '{"edited": true}', shareable=True, event=shared)
    shared.refresh_from_db()
    assert shared.payload == '{"edited": true}' and shared.owner_id == user.pk


def test_only_the_creator_changes_a_shareable_events_sharing(user, teammate, function):
    shared = save(user, function, "shared", shareable=True)

    with pytest.raises(ValidationError) as excinfo:
        save(teammate, function, "shared", shareable=False, event=shared)

    assert set(excinfo.value.message_dict) == {"shareable"}
    assert save(user, function, "shared", shareable=False, event=shared).shareable is False


def test_private_events_of_others_cannot_be_read_or_changed(user, teammate, function):
    private = save(user, function, "private")

    with pytest.raises(Http404):
        saved_events.test_event_get_for_user(user=teammate, function=function, pk=private.pk)
    with pytest.raises(PermissionDenied):
        saved_events.test_event_delete(user=teammate, event=private)
    with pytest.raises(PermissionDenied):
        saved_events.test_event_rename(user=teammate, event=private, name="stolen")
    with pytest.raises(PermissionDenied):
        save(teammate, function, "private", event=private)


def test_rename_changes_the_name_and_checks_it(user, function):
    event = save(user, function, "first")
    save(user, function, "second")

    renamed = saved_events.test_event_rename(user=user, event=event, name="renamed")
    assert names(user, function) == ["renamed", "second"]
    assert renamed.pk == event.pk

    with pytest.raises(ValidationError) as taken:
        saved_events.test_event_rename(user=user, event=event, name="second")
    assert "already exists" in taken.value.message_dict["name"][0]
    with pytest.raises(ValidationError) as bad:
        saved_events.test_event_rename(user=user, event=event, name="bad name")
    assert set(bad.value.message_dict) == {"name"}


def test_delete_removes_the_event(user, teammate, function):
    event = save(user, function, "gone")
    shared = save(user, function, "shared", shareable=True)

    saved_events.test_event_delete(user=user, event=event)
    saved_events.test_event_delete(user=teammate, event=shared)

    assert not invocation_models.TestEvent.objects.exists()
