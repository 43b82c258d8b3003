"""Provisioned concurrency through boto3: the four operations, Lambda's errors, and a real
worker bringing a configuration to READY and serving invocations from it."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.db.models import Sum

from api.tests.conftest import HELLO, zip_of
from monitoring.models import MetricDatapoint

pytestmark = [pytest.mark.django_db(transaction=True)]

INIT_TYPE = """
    import os
    import time


    def lambda_handler(event, context):
        time.sleep(event.get("sleep", 0))
        return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
"""


@pytest.fixture
def published(lambda_api: Any, role: str) -> Any:
    def published(name: str, code: str = HELLO) -> str:
        lambda_api.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="lambda_function.lambda_handler",
            Code={"ZipFile": zip_of(code)},
        )
        return str(lambda_api.publish_version(FunctionName=name)["Version"])

    return published


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return dict(caught.value.response)


def test_configurations_are_put_read_listed_and_deleted(lambda_api, published, account_id):
    version = published("warm")
    lambda_api.create_alias(FunctionName="warm", Name="live", FunctionVersion=version)

    put = lambda_api.put_provisioned_concurrency_config(
        FunctionName="warm", Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] == "IN_PROGRESS"
    assert put["AllocatedProvisionedConcurrentExecutions"] == 0
    assert put["LastModified"]
    lambda_api.put_provisioned_concurrency_config(
        FunctionName="warm", Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    # Putting again replaces the requested count.
    again = lambda_api.put_provisioned_concurrency_config(
        FunctionName="warm", Qualifier=version, ProvisionedConcurrentExecutions=3
    )
    assert again["RequestedProvisionedConcurrentExecutions"] == 3

    got = lambda_api.get_provisioned_concurrency_config(FunctionName="warm", Qualifier=version)
    assert got["RequestedProvisionedConcurrentExecutions"] == 3
    listed = lambda_api.list_provisioned_concurrency_configs(FunctionName="warm")
    arns = [item["FunctionArn"] for item in listed["ProvisionedConcurrencyConfigs"]]
    base = f"arn:aws:lambda:us-east-1:{account_id}:function:warm"
    assert arns == [f"{base}:{version}", f"{base}:live"]
    first_page = lambda_api.list_provisioned_concurrency_configs(FunctionName="warm", MaxItems=1)
    assert len(first_page["ProvisionedConcurrencyConfigs"]) == 1
    rest = lambda_api.list_provisioned_concurrency_configs(
        FunctionName="warm", Marker=first_page["NextMarker"]
    )
    assert [i["FunctionArn"] for i in rest["ProvisionedConcurrencyConfigs"]] == [f"{base}:live"]

    deleted = lambda_api.delete_provisioned_concurrency_config(
        FunctionName="warm", Qualifier=version
    )
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    error = error_of(
        lambda_api.get_provisioned_concurrency_config, FunctionName="warm", Qualifier=version
    )
    assert error["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_lambda_errors_for_bad_configurations(lambda_api, published):
    version = published("picky")

    latest = error_of(
        lambda_api.put_provisioned_concurrency_config,
        FunctionName="picky",
        Qualifier="$LATEST",
        ProvisionedConcurrentExecutions=1,
    )
    assert latest["Error"]["Code"] == "InvalidParameterValueException"
    assert latest["Error"]["Message"] == (
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    )
    missing = error_of(
        lambda_api.put_provisioned_concurrency_config,
        FunctionName="picky",
        Qualifier="7",
        ProvisionedConcurrentExecutions=1,
    )
    assert missing["Error"]["Code"] == "ResourceNotFoundException"
    unknown_function = error_of(
        lambda_api.get_provisioned_concurrency_config, FunctionName="ghost", Qualifier="1"
    )
    assert unknown_function["Error"]["Code"] == "ResourceNotFoundException"

    lambda_api.put_function_concurrency(FunctionName="picky", ReservedConcurrentExecutions=2)
    over = error_of(
        lambda_api.put_provisioned_concurrency_config,
        FunctionName="picky",
        Qualifier=version,
        ProvisionedConcurrentExecutions=3,
    )
    assert over["Error"]["Code"] == "InvalidParameterValueException"
    assert "reservedConcurrentExecution" in over["Error"]["Message"]
    lambda_api.delete_function_concurrency(FunctionName="picky")
    too_many = error_of(
        lambda_api.put_provisioned_concurrency_config,
        FunctionName="picky",
        Qualifier=version,
        ProvisionedConcurrentExecutions=901,
    )
    assert "UnreservedConcurrentExecution" in too_many["Error"]["Message"]
    assert not lambda_api.list_provisioned_concurrency_configs(FunctionName="picky")[
        "ProvisionedConcurrencyConfigs"
    ]


@pytest.mark.worker
def test_a_worker_makes_the_configuration_ready_and_serves_from_it(
    lambda_api, published, live_worker
):
    version = published("ready", INIT_TYPE)

    lambda_api.put_provisioned_concurrency_config(
        FunctionName="ready", Qualifier=version, ProvisionedConcurrentExecutions=1
    )

    deadline = time.monotonic() + 60
    config: dict[str, Any] = {}
    while time.monotonic() < deadline:
        config = lambda_api.get_provisioned_concurrency_config(
            FunctionName="ready", Qualifier=version
        )
        if config["Status"] == "READY":
            break
        time.sleep(0.5)
    assert config["Status"] == "READY"
    assert config["AllocatedProvisionedConcurrentExecutions"] == 1
    assert config["AvailableProvisionedConcurrentExecutions"] == 1

    response = lambda_api.invoke(FunctionName="ready", Qualifier=version)
    assert json.loads(response["Payload"].read()) == "provisioned-concurrency"
    assert metric("ProvisionedConcurrencyInvocations") == 1
    assert metric("ProvisionedConcurrencySpilloverInvocations") == 0

    # Two at once: one provisioned environment, so the second spills over to on-demand.
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [
            pool.submit(
                lambda_api.invoke,
                FunctionName="ready",
                Qualifier=version,
                Payload=b'{"sleep": 1.5}',
            )
            for _ in range(2)
        ]
        kinds = sorted(json.loads(call.result()["Payload"].read()) for call in calls)
    assert kinds == ["on-demand", "provisioned-concurrency"]
    assert metric("ProvisionedConcurrencyInvocations") == 2
    assert metric("ProvisionedConcurrencySpilloverInvocations") == 1

    lambda_api.delete_provisioned_concurrency_config(FunctionName="ready", Qualifier=version)
    # The worker lets its provisioned environment go: later invocations are on-demand.
    deadline = time.monotonic() + 30
    kind = ""
    while time.monotonic() < deadline and kind != "on-demand":
        time.sleep(1)
        answer = lambda_api.invoke(FunctionName="ready", Qualifier=version)
        kind = json.loads(answer["Payload"].read())
    assert kind == "on-demand"


def metric(name: str) -> float:
    return (
        MetricDatapoint.objects.filter(
            metric_name=name, dimension_name="FunctionName", dimension_value="ready"
        ).aggregate(total=Sum("sum"))["total"]
        or 0
    )
