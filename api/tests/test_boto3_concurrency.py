"""Concurrency limits through boto3: reserved concurrency and the account limit throttle
synchronous calls with a 429 naming the limit; throttled events stay queued and run later;
the Throttles and ConcurrentExecutions metrics count exactly."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.db.models import Max, Sum
from django.test import override_settings

from api.tests.conftest import HELLO, REGION
from invocations.models import Invocation
from invocations.tests.concurrency_helpers import forget_all_leases
from monitoring.models import MetricDatapoint

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SLOW = """
    import time


    def lambda_handler(event, context):
        time.sleep(event.get("sleep", 2))
        return "done"
"""


@pytest.fixture(autouse=True)
def _no_leases_from_earlier_runs() -> None:
    """Function ids start again with each test database: forget older runs' leases."""
    forget_all_leases()


@pytest.fixture
def lambda_api(live_server: Any, access_key: Any) -> Any:
    """A client that sends each request once: botocore retries throttles by default, and
    every retry would be one more throttle."""
    return boto3.client(
        "lambda",
        endpoint_url=live_server.url,
        region_name=REGION,
        aws_access_key_id=access_key.access_key.access_key_id,
        aws_secret_access_key=access_key.secret_access_key,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def metric(name: str, function: str, statistic: str = "sum") -> float:
    rows = MetricDatapoint.objects.filter(
        metric_name=name, dimension_name="FunctionName", dimension_value=function
    )
    if statistic == "max":
        return rows.aggregate(value=Max("maximum"))["value"] or 0
    return rows.aggregate(value=Sum("sum"))["value"] or 0


def invoke_in_parallel(lambda_api: Any, name: str, count: int, payload: bytes) -> list[Any]:
    """Start `count` synchronous calls at once; each result is a response or a ClientError."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def call(index: int) -> None:
        start.wait()
        try:
            results[index] = lambda_api.invoke(FunctionName=name, Payload=payload)
        except ClientError as exc:
            results[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_reserved_zero_throttles_every_synchronous_call(lambda_api, deploy):
    deploy("held", HELLO)
    lambda_api.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=0)

    for _ in range(3):
        with pytest.raises(ClientError) as caught:
            lambda_api.invoke(FunctionName="held", Payload=b'{"key1": "x"}')
        error = caught.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert error["Error"]["Code"] == "TooManyRequestsException"
        assert error["Error"]["Message"] == "Rate Exceeded."
        assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert error["Type"] == "User"
        assert error["retryAfterSeconds"] == "1"
        assert isinstance(caught.value, lambda_api.exceptions.TooManyRequestsException)

    assert not Invocation.objects.filter(function_name="held").exists()
    assert metric("Throttles", "held") == 3
    assert metric("Invocations", "held") == 0


def test_reserved_one_admits_one_of_two_parallel_calls(lambda_api, deploy, live_worker):
    deploy("single", SLOW)
    lambda_api.put_function_concurrency(FunctionName="single", ReservedConcurrentExecutions=1)

    results = invoke_in_parallel(lambda_api, "single", 2, b'{"sleep": 2}')

    throttled = [r for r in results if isinstance(r, ClientError)]
    answered = [r for r in results if not isinstance(r, ClientError)]
    assert len(throttled) == 1 and len(answered) == 1
    assert throttled[0].response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert json.loads(answered[0]["Payload"].read()) == "done"
    assert metric("Throttles", "single") == 1
    assert metric("Invocations", "single") == 1
    assert metric("ConcurrentExecutions", "single", "max") == 1
    # The slot is free again once the call has answered.
    response = lambda_api.invoke(FunctionName="single", Payload=b'{"sleep": 0}')
    assert response["StatusCode"] == 200


def test_concurrent_executions_is_the_number_in_flight(lambda_api, deploy, live_worker):
    deploy("wide", SLOW)

    results = invoke_in_parallel(lambda_api, "wide", 3, b'{"sleep": 3}')

    assert all(not isinstance(r, ClientError) and r["StatusCode"] == 200 for r in results)
    assert metric("ConcurrentExecutions", "wide", "max") == 3
    assert metric("Invocations", "wide") == 3
    assert metric("Throttles", "wide") == 0


def test_the_account_limit_throttles_with_its_own_reason(lambda_api, deploy, live_worker):
    deploy("shared", SLOW)
    deploy("reserved", HELLO)
    lambda_api.put_function_concurrency(FunctionName="reserved", ReservedConcurrentExecutions=5)

    with override_settings(STRATUS_ACCOUNT_CONCURRENCY_LIMIT=6):
        settings = lambda_api.get_account_settings()["AccountLimit"]
        assert settings["ConcurrentExecutions"] == 6
        assert settings["UnreservedConcurrentExecutions"] == 1
        results = invoke_in_parallel(lambda_api, "shared", 2, b'{"sleep": 2}')
        # The reserved function keeps its own concurrency.
        assert lambda_api.invoke(FunctionName="reserved", Payload=b"{}")["StatusCode"] == 200

    throttled = [r for r in results if isinstance(r, ClientError)]
    assert len(throttled) == 1
    assert throttled[0].response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled[0].response["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert metric("Throttles", "shared") == 1
    assert metric("Throttles", "reserved") == 0


def test_a_throttled_event_stays_queued_and_runs_once_allowed(lambda_api, deploy, live_worker):
    deploy("later", HELLO)
    lambda_api.put_function_concurrency(FunctionName="later", ReservedConcurrentExecutions=0)

    response = lambda_api.invoke(
        FunctionName="later", InvocationType="Event", Payload=b'{"key1": "queued"}'
    )

    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 20
    while metric("Throttles", "later") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    # Tried and throttled more than once, and still waiting: nothing was dropped.
    assert metric("Throttles", "later") >= 2
    invocation = Invocation.objects.get(pk=request_id)
    assert invocation.status == "queued"
    assert invocation.attempts == 0
    assert metric("Invocations", "later") == 0

    lambda_api.delete_function_concurrency(FunctionName="later")

    deadline = time.monotonic() + 60
    while not invocation.is_terminal and time.monotonic() < deadline:
        time.sleep(0.2)
        invocation.refresh_from_db()
    assert invocation.status == "succeeded"
    assert json.loads(invocation.response) == {"echo": "queued", "function": "later"}
    assert metric("Invocations", "later") == 1
