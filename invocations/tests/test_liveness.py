"""Worker liveness: heartbeats, what the sweeper does with a dead worker's invocations, and a
synchronous caller noticing a record the sweeper ended."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from console.selectors import account_for_user, function_arn
from invocations import concurrency, liveness
from invocations.async_config import event_invoke_config_put
from invocations.liveness import (
    WORKER_LOST_MESSAGE,
    Heartbeat,
    invocation_requeue,
    invocations_hand_back_orphans,
    orphaned_invocations,
    worker_beat,
)
from invocations.models import (
    AsyncCondition,
    Invocation,
    InvocationStatus,
    InvocationType,
    WorkerHeartbeat,
)
from invocations.services import RUNNING_GRACE_SECONDS, invocation_sweep, invocation_wait
from invocations.tests.helpers import make_function

CODE = """
    def lambda_handler(event, context):
        return event
"""


def _running(function, *, worker: str, invocation_type: str = InvocationType.EVENT, attempts=1):
    return Invocation.objects.create(
        function=function,
        function_name=function.name,
        payload="{}",
        code_sha256=function.code_sha256,
        memory_size=function.memory_size,
        timeout=function.timeout,
        invocation_type=invocation_type,
        status=InvocationStatus.RUNNING,
        started_at=timezone.now(),
        attempts=attempts,
        worker=worker,
    )


def _silent_for(worker_id: str, seconds: float) -> None:
    worker_beat(worker_id=worker_id)
    WorkerHeartbeat.objects.filter(worker_id=worker_id).update(
        last_seen=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.fixture
def function(user):
    return make_function(user, CODE)


@pytest.fixture
def database_up_for_long(monkeypatch):
    # The test database's server may have started moments ago on a fresh CI machine.
    monkeypatch.setattr(liveness, "_database_just_started", lambda: False)


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_registers_the_worker_and_unregisters_it_when_stopped():
    heartbeat = Heartbeat("host:1:abc", interval=0.05)
    heartbeat.start()
    try:
        first = WorkerHeartbeat.objects.get(worker_id="host:1:abc").last_seen
        time.sleep(0.3)
        assert WorkerHeartbeat.objects.get(worker_id="host:1:abc").last_seen > first
        assert liveness.current_worker_id() == "host:1:abc"
    finally:
        heartbeat.stop()
    assert not WorkerHeartbeat.objects.filter(worker_id="host:1:abc").exists()


@pytest.mark.django_db
@override_settings(STRATUS_WORKER_LOST_AFTER=10)
def test_only_records_of_silent_or_unknown_workers_are_orphans(function, database_up_for_long):
    _silent_for("alive", 1)
    _silent_for("silent", 60)
    alive = _running(function, worker="alive")
    silent = _running(function, worker="silent")
    gone = _running(function, worker="unregistered")
    in_web_process = _running(function, worker="")

    orphans = {invocation.pk for invocation in orphaned_invocations()}

    assert orphans == {silent.pk, gone.pk}
    assert alive.pk not in orphans and in_web_process.pk not in orphans


@pytest.mark.django_db
def test_nobody_is_declared_dead_right_after_the_database_restarted(function):
    _running(function, worker="unregistered")
    with override_settings(STRATUS_WORKER_LOST_AFTER=10**9):
        # The server started less than that long ago: live workers may not have beaten yet.
        assert orphaned_invocations() == []


@pytest.mark.django_db
def test_the_sweeper_requeues_a_lost_event_and_fails_a_lost_synchronous_call(
    function, database_up_for_long
):
    event = _running(function, worker="dead")
    call = _running(function, worker="dead", invocation_type=InvocationType.REQUEST_RESPONSE)

    counts = invocation_sweep()

    event.refresh_from_db()
    call.refresh_from_db()
    assert counts["orphans_requeued"] == 1 and counts["orphans_failed"] == 1
    # In-process mode: the republished task ran at once.
    assert event.status == InvocationStatus.SUCCEEDED
    assert event.attempts == 2
    assert call.status == InvocationStatus.FAILED
    assert call.error_type == "ServiceException"
    assert WORKER_LOST_MESSAGE in call.error_message
    assert json.loads(call.response)["errorType"] == "ServiceException"


@pytest.mark.django_db
@override_settings(STRATUS_WORKER_LOST_MAX_ATTEMPTS=3)
def test_an_event_that_keeps_killing_its_worker_is_failed_not_retried_forever(
    function, database_up_for_long
):
    poison = _running(function, worker="dead", attempts=3)

    counts = invocations_hand_back_orphans()

    poison.refresh_from_db()
    assert counts == {"orphans_requeued": 0, "orphans_failed": 1, "messages_requeued": 0}
    assert poison.status == InvocationStatus.FAILED
    assert "(3 attempts)" in poison.error_message


@pytest.mark.django_db
@override_settings(STRATUS_WORKER_LOST_MAX_ATTEMPTS=2)
def test_an_event_given_up_after_lost_workers_goes_to_its_failure_destination(
    function, user, database_up_for_long
):
    target = make_function(user, CODE, name="on-failure-target")
    account_id = account_for_user(user).account_id
    event_invoke_config_put(
        function=function,
        on_failure=function_arn(account_id=account_id, function_name=target.name),
    )
    poison = _running(function, worker="dead", attempts=2)

    invocations_hand_back_orphans()

    poison.refresh_from_db()
    assert poison.async_condition == AsyncCondition.RETRIES_EXHAUSTED
    (delivered,) = Invocation.objects.filter(function=target)
    record = json.loads(delivered.payload)
    assert delivered.invocation_type == InvocationType.EVENT
    assert record["requestContext"]["requestId"] == str(poison.request_id)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2


@pytest.mark.django_db
def test_an_event_a_live_worker_lost_track_of_is_failed_freed_and_delivered(
    function, user, database_up_for_long
):
    target = make_function(user, CODE, name="overdue-target")
    account_id = account_for_user(user).account_id
    event_invoke_config_put(
        function=function,
        on_failure=function_arn(account_id=account_id, function_name=target.name),
    )
    worker_beat(worker_id="alive")
    lost = _running(function, worker="alive")
    lease = concurrency.admit(
        concurrency.limits_for_function(function), request_id=str(lost.pk), timeout=900
    )
    long_ago = timezone.now() - timedelta(seconds=function.timeout + RUNNING_GRACE_SECONDS + 5)
    Invocation.objects.filter(pk=lost.pk).update(started_at=long_ago)

    counts = invocation_sweep()

    lost.refresh_from_db()
    assert counts["failed"] == 1 and counts["orphans_failed"] == 0
    assert lost.status == InvocationStatus.FAILED
    assert lost.error_type == "ServiceException"
    assert lost.async_condition == AsyncCondition.RETRIES_EXHAUSTED
    assert lease.function_in_flight == 1
    assert concurrency.in_flight(function_id=function.pk, owner_id=user.pk)[0] == 0
    (delivered,) = Invocation.objects.filter(function=target)
    assert json.loads(delivered.payload)["requestContext"]["requestId"] == str(lost.pk)


@pytest.mark.django_db
def test_requeue_only_takes_a_record_still_running_on_that_worker(function):
    invocation = _running(function, worker="w1")
    invocation_requeue_other = invocation_requeue(request_id=str(invocation.pk), worker="w2")
    Invocation.objects.filter(pk=invocation.pk).update(status=InvocationStatus.SUCCEEDED)
    invocation_requeue_finished = invocation_requeue(request_id=str(invocation.pk), worker="w1")

    assert not invocation_requeue_other and not invocation_requeue_finished
    invocation.refresh_from_db()
    assert invocation.status == InvocationStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_waiting_caller_sees_a_record_the_sweeper_failed(function, live_worker):
    # Never published: only the record can tell the caller how it ended.
    call = _running(function, worker="dead", invocation_type=InvocationType.REQUEST_RESPONSE)

    def fail_it() -> None:
        time.sleep(0.5)
        liveness.invocation_fail_worker_lost(request_id=str(call.pk), worker="dead")
        connection.close()

    threading.Thread(target=fail_it).start()
    started = time.monotonic()
    finished = invocation_wait(invocation=call, timeout=30)

    assert finished.status == InvocationStatus.FAILED
    assert WORKER_LOST_MESSAGE in finished.error_message
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_a_failed_orphan_frees_its_concurrency_slot(function, database_up_for_long):
    from invocations import concurrency

    call = _running(function, worker="dead", invocation_type=InvocationType.REQUEST_RESPONSE)
    limits = concurrency.current_limits(function_id=function.pk, owner_id=function.owner_id)
    concurrency.admit(limits, request_id=str(call.pk), timeout=function.timeout)
    held = concurrency.in_flight(function_id=function.pk, owner_id=function.owner_id)

    invocations_hand_back_orphans()

    freed = concurrency.in_flight(function_id=function.pk, owner_id=function.owner_id)
    assert held[0] == 1
    assert freed[0] == 0


@pytest.mark.django_db
def test_a_worker_taken_for_dead_cannot_overwrite_the_handed_back_record(function, monkeypatch):
    from invocations import executor, services

    real_execute = executor.execute

    def execute_while_taken_for_dead(*args, **kwargs):
        result = real_execute(*args, **kwargs)
        # Meanwhile the sweeper took this worker for dead and ended the record.
        request_id = args[2].request_id
        liveness.invocation_fail_worker_lost(request_id=request_id, worker="")
        return result

    monkeypatch.setattr(services, "execute", execute_while_taken_for_dead)
    invocation = services.invocation_submit(function=function, payload='{"a": 1}')
    services.invocation_execute(request_id=str(invocation.pk))

    invocation.refresh_from_db()
    assert invocation.status == InvocationStatus.FAILED
    assert WORKER_LOST_MESSAGE in invocation.error_message


def test_the_broker_never_redelivers_a_message_while_its_invocation_may_still_run():
    from django.conf import settings

    from functions.validation import TIMEOUT_RANGE
    from invocations.executor import INIT_ALLOWANCE_SECONDS

    longest_run = TIMEOUT_RANGE[1] + INIT_ALLOWANCE_SECONDS + settings.STRATUS_EE_CAPACITY_WAIT
    for options in (
        settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS,
    ):
        assert options["visibility_timeout"] > longest_run + 60


def test_a_stopping_worker_is_given_more_time_than_its_drain():
    from django.conf import settings

    from console.management.commands.run_stratus import worker_spec

    assert worker_spec().grace > settings.STRATUS_WORKER_DRAIN_TIMEOUT


@pytest.mark.django_db
def test_a_retry_takes_back_this_workers_interrupted_claim_but_not_a_running_one(function):
    from invocations import services
    from invocations.liveness import current_worker_id
    from invocations.services import invocation_execute, invocation_submit

    # A database error cut the first attempt short after its claim had committed.
    accepted = invocation_submit(function=function, payload='{"n": 1}')
    Invocation.objects.filter(pk=accepted.pk).update(
        status=InvocationStatus.RUNNING, worker=current_worker_id(), attempts=1
    )
    request_id = str(accepted.pk)

    # While a delivery in this process runs it, another one leaves it alone...
    services._executing[request_id] += 1
    try:
        assert invocation_execute(request_id=request_id) == InvocationStatus.RUNNING
    finally:
        services._executing[request_id] -= 1
    # ...and the retry of the interrupted attempt runs it, once.
    invocation_execute(request_id=request_id)

    invocation = Invocation.objects.get(pk=accepted.pk)
    assert (invocation.status, invocation.attempts) == (InvocationStatus.SUCCEEDED, 1)
    assert json.loads(invocation.response) == {"n": 1}
