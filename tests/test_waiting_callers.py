"""A synchronous caller waiting for the worker does not hold a database connection, so a web
process may have more request threads than its connection pool has connections."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from invocations.models import Invocation
from invocations.services import invocation_submit, invocation_wait
from invocations.tests.helpers import invoke, make_function

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SLOW = """
    import time

    def lambda_handler(event, context):
        time.sleep(3)
        return "done"
"""


def backend_is_connected(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row and row[0])


def test_a_waiting_caller_gives_its_connection_back(user, live_worker):
    function = make_function(user, SLOW, timeout=10)
    invoke(function, "{}")  # the cold start, out of the way
    submitted = threading.Event()
    caller_backend: list[int] = []

    def caller() -> Invocation:
        try:
            invocation = invocation_submit(function=function, payload="{}")
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                caller_backend.append(cursor.fetchone()[0])
            submitted.set()
            return invocation_wait(invocation=invocation)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as threads:
        waiting = threads.submit(caller)
        assert submitted.wait(timeout=10)
        deadline = time.monotonic() + 2
        while backend_is_connected(caller_backend[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        released_while_waiting = not waiting.done() and not backend_is_connected(caller_backend[0])
        invocation = waiting.result(timeout=30)

    assert invocation.status == "succeeded"
    assert invocation.response == '"done"'
    assert released_while_waiting
