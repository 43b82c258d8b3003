"""A synchronous call the worker finds no room for is a 429 too, with the account-wide
Reason: the platform's own concurrency ran out. Tasks run in-process here, so the pool is
this process's and its memory budget can be made too small."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from api.tests.conftest import HELLO, zip_of
from invocations import environments
from invocations.models import Invocation

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_no_room_for_an_execution_environment_is_a_429(lambda_api, role, settings):
    lambda_api.create_function(
        FunctionName="too-big",
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": zip_of(HELLO)},
        MemorySize=512,
    )
    settings.STRATUS_EE_MEMORY_BUDGET_MB = 256
    environments.shutdown_pool()
    try:
        with pytest.raises(ClientError) as caught:
            lambda_api.invoke(FunctionName="too-big", Payload=b"{}")
    finally:
        environments.shutdown_pool()

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert error["retryAfterSeconds"] == "1"
    # Each attempt (botocore retried once) is on record, as a throttle.
    error_types = Invocation.objects.filter(function_name="too-big").values_list(
        "error_type", flat=True
    )
    assert list(error_types) == ["TooManyRequestsException"] * 2
