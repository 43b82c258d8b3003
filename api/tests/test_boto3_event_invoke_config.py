"""Put/Get/Update/Delete/ListFunctionEventInvokeConfig and DeadLetterConfig through boto3."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from api.tests.conftest import lambda_client

pytestmark = pytest.mark.django_db(transaction=True)


def arn(account_id: str, name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:{account_id}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error = excinfo.value.response["Error"]
    return (
        error["Code"],
        error["Message"],
        excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_put_then_get_returns_the_settings(lambda_api, deploy, account_id):
    deploy("worker")
    deploy("on-failure")
    before = time.time()

    put = lambda_api.put_function_event_invoke_config(
        FunctionName="worker",
        MaximumRetryAttempts=1,
        MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": arn(account_id, "on-failure")}},
    )
    got = lambda_api.get_function_event_invoke_config(FunctionName="worker")

    for body in (put, got):
        assert body["FunctionArn"] == arn(account_id, "worker", "$LATEST")
        assert body["MaximumRetryAttempts"] == 1
        assert body["MaximumEventAgeInSeconds"] == 120
        assert body["DestinationConfig"] == {
            "OnSuccess": {},
            "OnFailure": {"Destination": arn(account_id, "on-failure")},
        }
        # botocore parses the epoch seconds into a datetime.
        assert before - 1 <= body["LastModified"].timestamp() <= time.time() + 1


def test_put_replaces_everything_and_update_merges(lambda_api, deploy, account_id):
    deploy("worker")
    deploy("sink")
    lambda_api.put_function_event_invoke_config(
        FunctionName="worker",
        MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": arn(account_id, "sink")}},
    )

    updated = lambda_api.update_function_event_invoke_config(
        FunctionName="worker", MaximumEventAgeInSeconds=3600
    )
    assert updated["MaximumRetryAttempts"] == 0
    assert updated["MaximumEventAgeInSeconds"] == 3600
    assert updated["DestinationConfig"]["OnSuccess"] == {"Destination": arn(account_id, "sink")}

    replaced = lambda_api.put_function_event_invoke_config(
        FunctionName="worker", MaximumEventAgeInSeconds=60
    )
    assert "MaximumRetryAttempts" not in replaced
    assert replaced["MaximumEventAgeInSeconds"] == 60
    assert replaced["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}


def test_configs_are_per_qualifier_and_listed_page_by_page(lambda_api, deploy, account_id):
    deploy("worker")
    lambda_api.publish_version(FunctionName="worker")
    lambda_api.create_alias(FunctionName="worker", Name="live", FunctionVersion="1")
    for qualifier, retries in (("$LATEST", 0), ("1", 1), ("live", 2)):
        lambda_api.put_function_event_invoke_config(
            FunctionName="worker", Qualifier=qualifier, MaximumRetryAttempts=retries
        )

    alias_config = lambda_api.get_function_event_invoke_config(FunctionName="worker:live")
    first = lambda_api.list_function_event_invoke_configs(FunctionName="worker", MaxItems=2)
    second = lambda_api.list_function_event_invoke_configs(
        FunctionName="worker", MaxItems=2, Marker=first["NextMarker"]
    )

    assert alias_config["FunctionArn"] == arn(account_id, "worker", "live")
    assert alias_config["MaximumRetryAttempts"] == 2
    listed = first["FunctionEventInvokeConfigs"] + second["FunctionEventInvokeConfigs"]
    assert [config["FunctionArn"] for config in listed] == [
        arn(account_id, "worker", "$LATEST"),
        arn(account_id, "worker", "1"),
        arn(account_id, "worker", "live"),
    ]
    assert "NextMarker" not in second


def test_delete_removes_it_and_a_missing_config_is_not_found(lambda_api, deploy, account_id):
    deploy("worker")
    lambda_api.put_function_event_invoke_config(FunctionName="worker", MaximumRetryAttempts=1)

    deleted = lambda_api.delete_function_event_invoke_config(FunctionName="worker")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204

    for call in (
        lambda: lambda_api.get_function_event_invoke_config(FunctionName="worker"),
        lambda: lambda_api.delete_function_event_invoke_config(FunctionName="worker"),
        lambda: lambda_api.update_function_event_invoke_config(
            FunctionName="worker", MaximumRetryAttempts=1
        ),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == (
            "ResourceNotFoundException",
            f"The function {arn(account_id, 'worker', '$LATEST')} doesn't have an "
            "EventInvokeConfig",
            404,
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"MaximumRetryAttempts": 3},
            "1 validation error detected: Value '3' at 'maximumRetryAttempts' failed to "
            "satisfy constraint: Member must have value less than or equal to 2",
        ),
        (
            {"MaximumRetryAttempts": -1},
            "1 validation error detected: Value '-1' at 'maximumRetryAttempts' failed to "
            "satisfy constraint: Member must have value greater than or equal to 0",
        ),
        (
            {"MaximumEventAgeInSeconds": 59},
            "1 validation error detected: Value '59' at 'maximumEventAgeInSeconds' failed to "
            "satisfy constraint: Member must have value greater than or equal to 60",
        ),
        (
            {"MaximumEventAgeInSeconds": 21601},
            "1 validation error detected: Value '21601' at 'maximumEventAgeInSeconds' failed "
            "to satisfy constraint: Member must have value less than or equal to 21600",
        ),
        ({}, "You must specify at least one of error handling or destination setting."),
    ],
)
def test_settings_out_of_range_are_refused(live_server, access_key, deploy, settings, message):
    deploy("worker")
    # botocore checks minimums itself: turn that off to see the server's answer.
    client = lambda_client(live_server.url, access_key, parameter_validation=False)

    with pytest.raises(ClientError) as excinfo:
        client.put_function_event_invoke_config(FunctionName="worker", **settings)

    assert error_of(excinfo) == ("InvalidParameterValueException", message, 400)
    with pytest.raises(ClientError):
        client.get_function_event_invoke_config(FunctionName="worker")


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("ghost", "The destination ARN {ghost} is invalid: function ghost does not exist."),
        ("worker", "You can't specify the function as a destination for itself."),
        ("queue", "Stratus cannot deliver to SQS queues: use a Lambda function ARN ({queue})."),
    ],
)
def test_destinations_are_checked(lambda_api, deploy, account_id, destination, message):
    deploy("worker")
    arns = {
        "ghost": arn(account_id, "ghost"),
        "worker": arn(account_id, "worker"),
        "queue": f"arn:aws:sqs:us-east-1:{account_id}:failures",
    }

    with pytest.raises(ClientError) as excinfo:
        lambda_api.put_function_event_invoke_config(
            FunctionName="worker",
            DestinationConfig={"OnFailure": {"Destination": arns[destination]}},
        )

    assert error_of(excinfo) == (
        "InvalidParameterValueException",
        message.format(**arns),
        400,
    )


def test_an_unknown_qualifier_is_not_found(lambda_api, deploy, account_id):
    deploy("worker")

    with pytest.raises(ClientError) as excinfo:
        lambda_api.put_function_event_invoke_config(
            FunctionName="worker", Qualifier="7", MaximumRetryAttempts=1
        )

    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        f"Function not found: {arn(account_id, 'worker', '7')}",
        404,
    )


def test_dead_letter_config_is_part_of_the_function_configuration(lambda_api, deploy, account_id):
    deploy("dlq")
    created = deploy("worker", DeadLetterConfig={"TargetArn": arn(account_id, "dlq")})
    assert created["DeadLetterConfig"] == {"TargetArn": arn(account_id, "dlq")}

    fetched = lambda_api.get_function_configuration(FunctionName="worker")
    assert fetched["DeadLetterConfig"] == {"TargetArn": arn(account_id, "dlq")}

    cleared = lambda_api.update_function_configuration(
        FunctionName="worker", DeadLetterConfig={"TargetArn": ""}
    )
    assert "DeadLetterConfig" not in cleared

    with pytest.raises(ClientError) as excinfo:
        lambda_api.update_function_configuration(
            FunctionName="worker",
            DeadLetterConfig={"TargetArn": f"arn:aws:sns:us-east-1:{account_id}:alerts"},
        )
    code, message, status = error_of(excinfo)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "Stratus cannot deliver to SNS topics" in message
