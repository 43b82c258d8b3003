"""Asynchronous invocation on the real stack: retries, event age, destinations and the
dead-letter target, run by a separate worker whose retry delays are scaled down (see
conftest: 1 and 2 minutes become 0.6 and 1.2 s)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from conftest import ASYNC_RETRY_DELAY_SCALE
from console.selectors import account_for_user
from functions.models import Function
from functions.services import function_update_configuration
from invocations.async_config import event_invoke_config_put
from invocations.models import Invocation
from invocations.services import invocation_submit, invocation_sweep
from invocations.tests.helpers import make_function
from monitoring.models import LogEvent, MetricDatapoint

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAILS = """
    def lambda_handler(event, context):
        raise ValueError("no " + event["item"])
"""
SUCCEEDS = """
    def lambda_handler(event, context):
        return {"done": event["item"]}
"""
# A destination that only keeps what it receives: the test reads its invocation records.
SINK = """
    def lambda_handler(event, context):
        return "received"
"""


def arn_of(function: Function) -> str:
    account_id = account_for_user(function.owner).account_id
    return f"arn:aws:lambda:us-east-1:{account_id}:function:{function.name}"


def wait_for(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not true after {timeout} s: {condition}")


def received(sink: Function, count: int = 1) -> list[dict[str, Any]]:
    """The events the sink function was invoked with, once it ran `count` times."""
    invocations = wait_for(
        lambda: (
            list(Invocation.objects.filter(function=sink, status="succeeded"))
            if Invocation.objects.filter(function=sink, status="succeeded").count() >= count
            else None
        )
    )
    return [json.loads(invocation.payload) for invocation in invocations]


def metric_sum(function: Function, metric: str) -> float:
    total = MetricDatapoint.objects.filter(
        metric_name=metric, dimension_name="FunctionName", dimension_value=function.name
    ).aggregate(total=Sum("sum"))["total"]
    return total or 0.0


def report_times(request_id: Any) -> list[Any]:
    return list(
        LogEvent.objects.filter(request_id=request_id, message__startswith="REPORT RequestId:")
        .order_by("timestamp")
        .values_list("timestamp", flat=True)
    )


def start_times(request_id: Any) -> list[Any]:
    return list(
        LogEvent.objects.filter(request_id=request_id, message__startswith="START RequestId:")
        .order_by("timestamp")
        .values_list("timestamp", flat=True)
    )


def test_a_failing_event_runs_three_times_then_its_record_goes_on_failure(user, live_worker):
    function = make_function(user, FAILS, name="fails")
    sink = make_function(user, SINK, name="on-failure")
    event_invoke_config_put(function=function, maximum_retry_attempts=2, on_failure=arn_of(sink))

    accepted = invocation_submit(
        function=function, payload='{"item": "apples"}', invocation_type="Event"
    )
    (record,) = received(sink)

    invocation = Invocation.objects.get(pk=accepted.pk)
    assert invocation.status == "failed"
    assert invocation.attempts == 3
    assert invocation.async_condition == "RetriesExhausted"
    assert len(report_times(accepted.pk)) == 3
    starts, reports = start_times(accepted.pk), report_times(accepted.pk)
    # Lambda's 1 and 2 minutes, scaled.
    assert (starts[1] - reports[0]).total_seconds() >= 60 * ASYNC_RETRY_DELAY_SCALE
    assert (starts[2] - reports[1]).total_seconds() >= 120 * ASYNC_RETRY_DELAY_SCALE
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": str(accepted.pk),
        "functionArn": f"{arn_of(function)}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"item": "apples"}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "no apples"
    delivery = Invocation.objects.get(function=sink)
    assert (delivery.invocation_type, delivery.source, delivery.chain_depth) == (
        "Event",
        "destination",
        1,
    )
    assert metric_sum(function, "Invocations") == 3
    assert metric_sum(function, "Errors") == 3
    assert metric_sum(function, "AsyncEventsReceived") == 1
    assert metric_sum(function, "AsyncEventsDropped") == 1
    assert metric_sum(function, "DestinationDeliveryFailures") == 0
    ages = MetricDatapoint.objects.filter(
        metric_name="AsyncEventAge", dimension_name="FunctionName", dimension_value="fails"
    ).aggregate(samples=Sum("sample_count"))
    assert ages["samples"] == 3


def test_a_successful_event_sends_its_record_on_success(user, live_worker):
    function = make_function(user, SUCCEEDS, name="works")
    sink = make_function(user, SINK, name="on-success")
    event_invoke_config_put(function=function, on_success=arn_of(sink))

    accepted = invocation_submit(
        function=function, payload='{"item": "pears"}', invocation_type="Event"
    )
    (record,) = received(sink)

    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["requestId"] == str(accepted.pk)
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"done": "pears"}
    assert Invocation.objects.get(pk=accepted.pk).attempts == 1
    assert metric_sum(function, "AsyncEventsReceived") == 1
    assert metric_sum(function, "AsyncEventsDropped") == 0


def test_no_retries_runs_once_and_the_dead_letter_target_gets_the_event(user, live_worker):
    function = make_function(user, FAILS, name="once")
    dead_letters = make_function(user, SINK, name="dead-letters")
    function_update_configuration(function=function, dead_letter_target_arn=arn_of(dead_letters))
    event_invoke_config_put(function=function, maximum_retry_attempts=0)

    accepted = invocation_submit(
        function=function, payload='{"item": "plums"}', invocation_type="Event"
    )
    (event,) = received(dead_letters)

    assert Invocation.objects.get(pk=accepted.pk).attempts == 1
    assert len(report_times(accepted.pk)) == 1
    (message,) = event["Records"]
    assert json.loads(message["body"]) == {"item": "plums"}
    attributes = {
        name: value["stringValue"] for name, value in message["messageAttributes"].items()
    }
    assert attributes == {
        "RequestID": str(accepted.pk),
        "ErrorCode": "200",
        "ErrorMessage": "no plums",
    }
    assert message["eventSourceARN"] == arn_of(dead_letters)
    assert metric_sum(function, "DeadLetterErrors") == 0
    assert metric_sum(function, "AsyncEventsDropped") == 1


def test_an_event_older_than_its_maximum_age_is_dropped_without_running(user, live_worker):
    function = make_function(user, SUCCEEDS, name="late")
    sink = make_function(user, SINK, name="too-late")
    event_invoke_config_put(
        function=function, maximum_event_age_in_seconds=60, on_failure=arn_of(sink)
    )
    # Accepted ten minutes ago and never delivered, as if the broker lost the message; the
    # sweeper publishes it again.
    stale = Invocation.objects.create(
        function=function,
        function_name=function.name,
        invocation_type="Event",
        source="api",
        payload='{"item": "figs"}',
        code_sha256=function.code_sha256,
        memory_size=function.memory_size,
        timeout=function.timeout,
    )
    Invocation.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    assert invocation_sweep()["requeued"] == 1
    (record,) = received(sink)

    invocation = Invocation.objects.get(pk=stale.pk)
    assert invocation.status == "failed"
    assert invocation.async_condition == "EventAgeExceeded"
    assert invocation.attempts == 0
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"item": "figs"}
    assert "responseContext" not in record
    assert report_times(stale.pk) == []
    assert metric_sum(function, "Invocations") == 0
    assert metric_sum(function, "AsyncEventsDropped") == 1
    assert metric_sum(function, "AsyncEventsReceived") == 1
