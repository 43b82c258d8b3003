"""Invoke when Stratus, not the function, fails: Lambda answers 500 ServiceException."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from api.tests.conftest import HELLO, zip_of
from invocations.models import Invocation

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_environment_that_cannot_start_is_a_service_exception(
    lambda_api, role, settings, tmp_path
):
    lambda_api.create_function(
        FunctionName="hello",
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": zip_of(HELLO)},
    )
    # The worker cannot unpack the code: its code cache is a file, not a folder.
    blocked = tmp_path / "code-cache"
    blocked.write_text("not a folder")
    settings.STRATUS_CODE_CACHE_DIR = blocked

    with pytest.raises(ClientError) as failure:
        lambda_api.invoke(FunctionName="hello", Payload=b"{}")

    error = failure.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error["Error"]["Code"] == "ServiceException"
    assert "could not start the execution environment" in error["Error"]["Message"]
    # The SDK may retry a 500: every attempt is on record, none lost or left running.
    outcomes = set(Invocation.objects.values_list("status", "error_type"))
    assert outcomes == {("failed", "ServiceException")}
