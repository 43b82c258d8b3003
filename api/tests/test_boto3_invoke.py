"""Invoke through boto3, executed by a real worker process."""

from __future__ import annotations

import base64
import json
import time

import pytest
from botocore.exceptions import ClientError

from api.tests.conftest import HELLO
from invocations.models import Invocation

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAILS = """
    def lambda_handler(event, context):
        raise KeyError("action")
"""
CONTEXT = """
    def lambda_handler(event, context):
        custom = context.client_context.custom if context.client_context else None
        return {"custom": custom, "version": context.function_version}
"""


def test_a_synchronous_invoke_with_the_log_tail(lambda_api, deploy, live_worker):
    deploy("hello", HELLO)

    response = lambda_api.invoke(
        FunctionName="hello", Payload=json.dumps({"key1": "hi"}), LogType="Tail"
    )

    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"echo": "hi", "function": "hello"}
    request_id = response["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(response["LogResult"]).decode()
    lines = log.splitlines()
    assert f"START RequestId: {request_id} Version: $LATEST" in lines
    assert "value1 = hi" in lines
    assert any(line.startswith(f"REPORT RequestId: {request_id}\tDuration: ") for line in lines)
    assert Invocation.objects.get(pk=request_id).source == "api"


def test_the_log_tail_is_the_last_4_kb(lambda_api, deploy, live_worker):
    deploy("chatty", 'def lambda_handler(event, context):\n    print("x" * 10000)\n')

    response = lambda_api.invoke(FunctionName="chatty", LogType="Tail")

    log = base64.b64decode(response["LogResult"])
    assert len(log) == 4096
    assert b"REPORT RequestId: " in log


def test_an_event_invoke_is_accepted_then_runs(lambda_api, deploy, live_worker):
    deploy("hello", HELLO)

    response = lambda_api.invoke(
        FunctionName="hello", InvocationType="Event", Payload=b'{"key1": "later"}'
    )

    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    request_id = response["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        invocation = Invocation.objects.get(pk=request_id)
        if invocation.is_terminal:
            break
        time.sleep(0.1)
    assert invocation.status == "succeeded"
    assert invocation.invocation_type == "Event"


def test_a_dry_run_only_checks(lambda_api, deploy):
    deploy("hello", HELLO)

    response = lambda_api.invoke(FunctionName="hello", InvocationType="DryRun")

    assert response["StatusCode"] == 204
    assert not Invocation.objects.exists()


def test_a_function_error_is_unhandled(lambda_api, deploy, live_worker):
    deploy("fails", FAILS)

    response = lambda_api.invoke(FunctionName="fails")

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "KeyError"
    assert error["errorMessage"] == "'action'"


def test_client_context_and_qualifiers(lambda_api, deploy, account_id, live_worker):
    deploy("context", CONTEXT)
    client_context = base64.b64encode(json.dumps({"custom": {"team": "core"}}).encode()).decode()
    arn = f"arn:aws:lambda:us-east-1:{account_id}:function:context"

    response = lambda_api.invoke(
        FunctionName=f"{arn}:$LATEST", ClientContext=client_context, Qualifier="$LATEST"
    )

    assert json.loads(response["Payload"].read()) == {
        "custom": {"team": "core"},
        "version": "$LATEST",
    }
    with pytest.raises(ClientError) as version:
        lambda_api.invoke(FunctionName="context", Qualifier="1")
    assert version.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as bad_context:
        lambda_api.invoke(FunctionName="context", ClientContext="not base64!")
    assert bad_context.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as too_long:
        lambda_api.invoke(FunctionName="context", ClientContext="e30=" * 1000)
    assert too_long.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_a_payload_that_is_not_json_is_refused(lambda_api, deploy):
    deploy("hello", HELLO)

    with pytest.raises(ClientError) as refused:
        lambda_api.invoke(FunctionName="hello", Payload=b"{not json")

    assert refused.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not Invocation.objects.exists()
