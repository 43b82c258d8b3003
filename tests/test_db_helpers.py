"""lib.db: rows inserted in one round trip, with or without a relaxed commit."""

from __future__ import annotations

import uuid

import pytest
from django.db import DataError, IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from functions.models import Function
from invocations.models import Invocation
from invocations.tests.helpers import make_function
from lib.db import insert_row

pytestmark = pytest.mark.django_db(transaction=True)


def _record(function: Function, **overrides: object) -> Invocation:
    fields: dict[str, object] = {
        "request_id": uuid.uuid4(),
        "function": function,
        "function_name": function.name,
        "payload": "{}",
        "code_sha256": function.code_sha256,
        "memory_size": 128,
        "timeout": 3,
        **overrides,
    }
    return Invocation(**fields)


@pytest.mark.parametrize("relaxed", [True, False])
def test_a_row_is_inserted_whole_in_one_round_trip(user, relaxed):
    function = make_function(user, "def lambda_handler(event, context):\n    return 1\n")
    record = _record(function)

    with CaptureQueriesContext(connection) as queries:
        insert_row(record, relaxed=relaxed)

    stored = Invocation.objects.get(pk=record.pk)
    assert stored.function_name == function.name
    assert stored.created_at == record.created_at is not None
    assert stored.status == "queued"
    assert not record._state.adding
    if connection.vendor == "postgresql":
        assert len(queries) == 1
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            # SET LOCAL held for that commit alone.
            assert cursor.fetchone() == ("on",)


def test_a_failed_insert_leaves_nothing_and_the_connection_usable(user):
    function = make_function(user, "def lambda_handler(event, context):\n    return 1\n")
    first = _record(function)
    insert_row(first, relaxed=True)

    with pytest.raises((IntegrityError, DataError)):
        insert_row(_record(function, request_id=first.request_id), relaxed=True)

    assert Invocation.objects.filter(function=function).count() == 1
    insert_row(_record(function), relaxed=True)
    assert Invocation.objects.filter(function=function).count() == 2


def test_a_row_without_its_key_is_refused(user):
    function = make_function(user, "def lambda_handler(event, context):\n    return 1\n")

    with pytest.raises(ValueError):
        insert_row(_record(function, request_id=None))
