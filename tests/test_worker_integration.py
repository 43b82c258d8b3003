"""The invocation path on the real stack: Postgres, Redis, and a separate Celery worker."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db.models import Max
from django.utils import timezone

from invocations import lane
from invocations.models import Invocation
from invocations.services import invocation_submit, invocation_sweep, invocation_wait
from invocations.tests.helpers import invoke, make_function
from monitoring.models import MetricDatapoint
from monitoring.selectors import log_messages_for_invocation

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WHO_RUNS_ME = """
    import os

    def lambda_handler(event, context):
        print("value1 = " + event["key1"])
        return {"parent_pid": os.getppid(), "echo": event["key1"]}
"""


def test_the_worker_process_runs_the_invocation_and_records_it(user, live_worker):
    function = make_function(user, WHO_RUNS_ME)

    invocation = invoke(function, '{"key1": "hello, world!"}')

    result = json.loads(invocation.response)
    assert invocation.status == "succeeded"
    assert result["echo"] == "hello, world!"
    assert result["parent_pid"] == live_worker.pid
    lines = log_messages_for_invocation(request_id=invocation.request_id)
    assert "value1 = hello, world!" in lines
    assert lines[-1].startswith(f"REPORT RequestId: {invocation.request_id}\t")
    assert MetricDatapoint.objects.get(metric_name="Invocations", dimension_value="fn").sum == 1


def test_the_worker_keeps_environments_warm(user, live_worker):
    function = make_function(user, WHO_RUNS_ME, name="warm")

    first = invoke(function, '{"key1": "a"}')
    second = invoke(function, '{"key1": "b"}')

    assert first.init_duration_ms is not None
    assert second.init_duration_ms is None
    assert first.log_stream_name == second.log_stream_name


def test_concurrent_invocations_get_separate_environments(user, live_worker):
    function = make_function(
        user,
        """
        import time

        def lambda_handler(event, context):
            time.sleep(0.5)
            return context.log_stream_name
        """,
        name="parallel",
    )

    submitted = [invocation_submit(function=function, payload="{}") for _ in range(3)]
    finished = [invocation_wait(invocation=invocation) for invocation in submitted]

    assert all(invocation.status == "succeeded" for invocation in finished)
    assert len({invocation.log_stream_name for invocation in finished}) == 3
    # The three may straddle a minute boundary: take the highest minute.
    concurrency = MetricDatapoint.objects.filter(
        metric_name="ConcurrentExecutions", dimension_value="parallel"
    ).aggregate(highest=Max("maximum"))
    assert concurrency["highest"] >= 2


def _accepted_long_ago(function, *, seconds: float, payload: str = "{}") -> Invocation:
    """A synchronous record accepted but never published, as if Redis lost the message."""
    invocation = Invocation.objects.create(
        function=function,
        function_name=function.name,
        payload=payload,
        code_sha256=function.code_sha256,
        memory_size=function.memory_size,
        timeout=function.timeout,
    )
    Invocation.objects.filter(pk=invocation.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )
    return invocation


def test_the_sweeper_republishes_a_queued_record_whose_message_was_lost(user, live_worker):
    # Its caller still waits: 150 s is past the requeue delay, within 300 s + the margin.
    function = make_function(user, WHO_RUNS_ME, name="lost", timeout=300)
    invocation = _accepted_long_ago(function, seconds=150, payload='{"key1": "found"}')

    swept = invocation_sweep()
    finished = invocation_wait(invocation=invocation)

    assert swept["requeued"] == 1
    assert finished.status == "succeeded"
    assert json.loads(finished.response)["echo"] == "found"


def test_a_lost_synchronous_call_whose_caller_left_is_failed_not_run(user, live_worker):
    function = make_function(user, WHO_RUNS_ME, name="abandoned")
    invocation = _accepted_long_ago(function, seconds=600)

    swept = invocation_sweep()

    invocation.refresh_from_db()
    assert swept["requeued"] == 0 and swept["failed"] == 1
    assert invocation.status == "failed"
    assert invocation.error_type == "ServiceException"
    assert "caller stopped waiting" in invocation.error_message
    assert invocation.attempts == 0


def _wait_for_terminal(invocation: Invocation, timeout: float = 15) -> Invocation:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        invocation.refresh_from_db()
        if invocation.is_terminal:
            return invocation
        time.sleep(0.05)
    raise AssertionError(f"{invocation.request_id} is still {invocation.status}")


def test_event_invocations_run_and_leave_no_answer_behind(user, live_worker):
    function = make_function(user, WHO_RUNS_ME, name="async")

    invocation = invocation_submit(
        function=function, payload='{"key1": "later"}', invocation_type="Event"
    )
    finished = _wait_for_terminal(invocation)

    assert finished.status == "succeeded"
    assert json.loads(finished.response)["echo"] == "later"
    assert not _answer_waiting(invocation)


def test_a_synchronous_answer_is_read_once_and_removed(user, live_worker):
    function = make_function(user, WHO_RUNS_ME, name="sync")

    invocation = invoke(function, '{"key1": "now"}')

    assert invocation.status == "succeeded"
    assert not _answer_waiting(invocation)


def _answer_waiting(invocation) -> bool:
    return bool(lane._client().exists(lane.reply_key(str(invocation.request_id))))
