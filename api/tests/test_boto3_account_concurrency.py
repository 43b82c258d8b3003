"""Account-level concurrency metrics through boto3 and a live worker: ConcurrentExecutions
with no dimension counts every function's executions in flight, UnreservedConcurrentExecutions
those of the functions without reserved concurrency; throttled requests count in neither."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.db.models import Max, Min, Sum

from api.tests.conftest import HELLO, REGION
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
    """Function ids and owners start again with each test database: forget older leases."""
    forget_all_leases()


@pytest.fixture
def lambda_api(live_server: Any, access_key: Any) -> Any:
    """A client that sends each request once: a retried throttle would be one more."""
    return boto3.client(
        "lambda",
        endpoint_url=live_server.url,
        region_name=REGION,
        aws_access_key_id=access_key.access_key.access_key_id,
        aws_secret_access_key=access_key.secret_access_key,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def account_metric(name: str) -> dict[str, Any]:
    """Samples, lowest and highest of an account-level metric over every minute."""
    return MetricDatapoint.objects.filter(
        metric_name=name, dimension_name="", dimension_value=""
    ).aggregate(samples=Sum("sample_count"), lowest=Min("minimum"), highest=Max("maximum"))


def invoke_all_at_once(lambda_api: Any, calls: list[tuple[str, bytes]]) -> list[Any]:
    """Start the synchronous calls together; each result is a response or a ClientError."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def call(index: int) -> None:
        name, payload = calls[index]
        start.wait()
        try:
            results[index] = lambda_api.invoke(FunctionName=name, Payload=payload)
        except ClientError as exc:
            results[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return results


def test_account_level_maxima_count_every_function_and_the_unreserved_ones(
    lambda_api, deploy, live_worker
):
    for name in ("shared-a", "shared-b", "own"):
        deploy(name, SLOW, Timeout=30)
    deploy("held", HELLO)
    lambda_api.put_function_concurrency(FunctionName="own", ReservedConcurrentExecutions=3)
    lambda_api.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=0)
    slow = b'{"sleep": 2}'

    results = invoke_all_at_once(
        lambda_api,
        [("shared-a", slow), ("shared-a", slow), ("shared-b", slow), ("own", slow), ("own", slow)],
    )

    assert [r["StatusCode"] for r in results if not isinstance(r, ClientError)] == [200] * 5
    concurrent = account_metric("ConcurrentExecutions")
    unreserved = account_metric("UnreservedConcurrentExecutions")
    # Five in flight at once, three of them in the unreserved pool: each admission saw one
    # more than the one before it.
    assert (concurrent["samples"], concurrent["lowest"], concurrent["highest"]) == (5, 1, 5)
    assert (unreserved["samples"], unreserved["lowest"], unreserved["highest"]) == (3, 1, 3)

    with pytest.raises(ClientError) as caught:
        lambda_api.invoke(FunctionName="held", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    # Every slot came back: the next call is alone in the account.
    assert lambda_api.invoke(FunctionName="own", Payload=b'{"sleep": 0}')["StatusCode"] == 200

    concurrent = account_metric("ConcurrentExecutions")
    assert (concurrent["samples"], concurrent["lowest"], concurrent["highest"]) == (6, 1, 5)
    assert account_metric("UnreservedConcurrentExecutions")["samples"] == 3
    throttles = MetricDatapoint.objects.filter(
        metric_name="Throttles", dimension_name="FunctionName", dimension_value="held"
    ).aggregate(total=Sum("sum"))
    assert throttles["total"] == 1
