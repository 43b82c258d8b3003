"""The asynchronous invocation engine in-process (tasks run eagerly): retry decisions, the
claim and sweeper guards on a retry's time, deliveries that fail, and the loop guard."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from console.selectors import account_for_user
from functions.models import Function
from functions.services import function_update_configuration
from invocations.async_config import event_invoke_config_put
from invocations.async_delivery import MAX_CHAIN_DEPTH
from invocations.models import Invocation
from invocations.services import invocation_execute, invocation_submit, invocation_sweep
from invocations.tests.helpers import make_function
from monitoring.models import MetricDatapoint

pytestmark = pytest.mark.django_db

FAILS = """
    def lambda_handler(event, context):
        raise RuntimeError("broken")
"""
SUCCEEDS = """
    def lambda_handler(event, context):
        return {"ok": True}
"""


def arn_of(function: Function) -> str:
    account_id = account_for_user(function.owner).account_id
    return f"arn:aws:lambda:us-east-1:{account_id}:function:{function.name}"


def run_event(function: Function, payload: str = '{"n": 1}') -> Invocation:
    """Accept an Event and run it here (the test's transaction never commits, so nothing
    is published)."""
    accepted = invocation_submit(function=function, payload=payload, invocation_type="Event")
    invocation_execute(request_id=str(accepted.pk))
    return Invocation.objects.get(pk=accepted.pk)


def metric_sum(function: Function, metric: str) -> float:
    total = MetricDatapoint.objects.filter(
        metric_name=metric, dimension_name="FunctionName", dimension_value=function.name
    ).aggregate(total=Sum("sum"))["total"]
    return total or 0.0


def deliveries(target: Function) -> list[dict[str, object]]:
    return [
        json.loads(invocation.payload)
        for invocation in Invocation.objects.filter(function=target, source="destination")
    ]


def test_without_a_broker_the_retries_follow_at_once(user):
    function = make_function(user, FAILS, name="fails")

    invocation = run_event(function)

    assert invocation.status == "failed"
    assert invocation.attempts == 3
    assert invocation.async_condition == "RetriesExhausted"
    assert metric_sum(function, "Invocations") == 3


@override_settings(STRATUS_ASYNC_RETRY_DELAY_SCALE=1.0)
def test_a_retry_that_would_come_after_the_maximum_age_ends_the_event(user):
    from console.celery import app as celery_app

    # As with a broker (the autouse fixture restores it): the retry would wait a minute,
    # past the event's maximum age, so it is not scheduled.
    celery_app.conf.task_always_eager = False
    function = make_function(user, FAILS, name="fails")
    sink = make_function(user, SUCCEEDS, name="sink")
    event_invoke_config_put(
        function=function, maximum_event_age_in_seconds=60, on_failure=arn_of(sink)
    )

    invocation = run_event(function)

    assert invocation.status == "failed"
    assert invocation.attempts == 1
    assert invocation.async_condition == "EventAgeExceeded"
    (record,) = deliveries(sink)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"  # type: ignore[index]
    assert record["requestContext"]["approximateInvokeCount"] == 1  # type: ignore[index]
    assert metric_sum(function, "AsyncEventsDropped") == 1


def test_a_retry_is_not_claimed_before_its_time_nor_swept(user):
    function = make_function(user, SUCCEEDS, name="later")
    accepted = invocation_submit(function=function, payload="{}", invocation_type="Event")
    # Accepted long ago, failed once, and due again in an hour.
    Invocation.objects.filter(pk=accepted.pk).update(
        created_at=timezone.now() - timedelta(hours=1),
        attempts=1,
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )

    # A second delivery of the message that ran the first attempt.
    assert invocation_execute(request_id=str(accepted.pk)) == "queued"
    assert invocation_sweep()["requeued"] == 0

    invocation = Invocation.objects.get(pk=accepted.pk)
    assert (invocation.status, invocation.attempts) == ("queued", 1)


def test_a_retry_whose_message_was_lost_is_swept_once_overdue(user):
    function = make_function(user, SUCCEEDS, name="lost")
    accepted = invocation_submit(function=function, payload="{}", invocation_type="Event")
    Invocation.objects.filter(pk=accepted.pk).update(
        attempts=1, next_attempt_at=timezone.now() - timedelta(minutes=10)
    )

    assert invocation_sweep()["requeued"] == 1

    invocation = Invocation.objects.get(pk=accepted.pk)
    assert (invocation.status, invocation.attempts) == ("succeeded", 2)


def test_deliveries_to_a_function_that_is_gone_are_counted(user):
    function = make_function(user, FAILS, name="fails")
    sink = make_function(user, SUCCEEDS, name="sink")
    dead_letters = make_function(user, SUCCEEDS, name="dead-letters")
    event_invoke_config_put(function=function, maximum_retry_attempts=0, on_failure=arn_of(sink))
    function_update_configuration(function=function, dead_letter_target_arn=arn_of(dead_letters))
    sink.delete()
    dead_letters.delete()

    invocation = run_event(function)

    assert invocation.status == "failed"
    assert metric_sum(function, "DestinationDeliveryFailures") == 1
    assert metric_sum(function, "DeadLetterErrors") == 1
    assert metric_sum(function, "AsyncEventsDropped") == 1


def test_a_chain_of_deliveries_stops_at_lambdas_limit(user):
    function = make_function(user, SUCCEEDS, name="chained")
    sink = make_function(user, SUCCEEDS, name="sink")
    event_invoke_config_put(function=function, on_success=arn_of(sink))

    accepted = invocation_submit(function=function, payload="{}", invocation_type="Event")
    Invocation.objects.filter(pk=accepted.pk).update(chain_depth=MAX_CHAIN_DEPTH - 2)
    invocation_execute(request_id=str(accepted.pk))
    (delivered,) = Invocation.objects.filter(function=sink)
    assert delivered.chain_depth == MAX_CHAIN_DEPTH - 1

    last = invocation_submit(function=function, payload="{}", invocation_type="Event")
    Invocation.objects.filter(pk=last.pk).update(chain_depth=MAX_CHAIN_DEPTH - 1)
    invocation_execute(request_id=str(last.pk))

    assert Invocation.objects.filter(function=sink).count() == 1
    assert metric_sum(function, "DestinationDeliveryFailures") == 1


def test_the_success_record_has_lambdas_shape(user):
    function = make_function(user, SUCCEEDS, name="works")
    sink = make_function(user, SUCCEEDS, name="sink")
    event_invoke_config_put(function=function, on_success=arn_of(sink))

    invocation = run_event(function, '{"n": 2}')

    (record,) = deliveries(sink)
    assert set(record) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    timestamp = str(record["timestamp"])
    assert timestamp.endswith("Z") and len(timestamp) == len("2019-11-14T18:16:05.568Z")
    assert record["requestContext"] == {
        "requestId": str(invocation.pk),
        "functionArn": f"{arn_of(function)}:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"n": 2}
    assert record["responsePayload"] == {"ok": True}
    assert invocation.async_condition == ""


def test_a_backlog_is_republished_once_per_requeue_period_not_at_every_sweep(user, monkeypatch):
    function = make_function(user, SUCCEEDS, name="backlog")
    accepted = invocation_submit(function=function, payload="{}", invocation_type="Event")
    Invocation.objects.filter(pk=accepted.pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    published: list[str] = []
    # The republished message is lost as well: the record stays queued.
    monkeypatch.setattr(
        "invocations.services._publish",
        lambda request_id, job=None, *, caller_waits=True: published.append(str(request_id)),
    )

    assert invocation_sweep()["requeued"] == 1
    assert invocation_sweep()["requeued"] == 0
    Invocation.objects.filter(pk=accepted.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=10)
    )
    assert invocation_sweep()["requeued"] == 1
    assert published == [str(accepted.pk)] * 2
