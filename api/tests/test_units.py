"""Small pieces: names and ARNs, timestamps, request members, the log tail, code links."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.core import signing
from django.test import RequestFactory

from api.code_location import (
    LIFETIME_SECONDS,
    CodeLocationInvalid,
    code_location_url,
    code_package_for_token,
)
from api.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from api.names import parse_function_arn, parse_function_name, parse_role_arn, require_latest
from api.params import Params
from api.serializers import lambda_timestamp
from api.unsupported import operation_name, unsupported
from api.views.invoke import log_tail
from console.tests.factories import make_function

ACCOUNT = "123456789012"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:my-fn"


@pytest.mark.parametrize(
    ("value", "name", "qualifier"),
    [
        ("my-fn", "my-fn", None),
        ("my-fn:$LATEST", "my-fn", "$LATEST"),
        ("my-fn:live", "my-fn", "live"),
        (f"{ACCOUNT}:function:my-fn", "my-fn", None),
        (f"{ACCOUNT}:function:my-fn:7", "my-fn", "7"),
        (ARN, "my-fn", None),
        (f"{ARN}:$LATEST", "my-fn", "$LATEST"),
    ],
)
def test_function_names_in_every_form(value, name, qualifier):
    ref = parse_function_name(value, account_id=ACCOUNT)

    assert (ref.name, ref.qualifier) == (name, qualifier)
    assert ref.arn == ARN.replace("my-fn", name)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "has space",
        "a" * 65,
        "arn:aws:lambda:us-east-1:function:x",
        "arn:aws:lambda:x",
        "fn:a:b",
    ],
)
def test_malformed_function_names(value):
    with pytest.raises(InvalidParameterValueException):
        parse_function_name(value, account_id=ACCOUNT)


@pytest.mark.parametrize(
    "value",
    [ARN.replace(ACCOUNT, "000000000000"), ARN.replace("us-east-1", "eu-west-1")],
)
def test_names_in_other_accounts_or_regions_are_not_found(value):
    with pytest.raises(ResourceNotFoundException):
        parse_function_name(value, account_id=ACCOUNT)


def test_qualifiers_from_the_name_and_the_query():
    assert parse_function_name("fn", account_id=ACCOUNT, query_qualifier="$LATEST").qualifier == (
        "$LATEST"
    )
    with pytest.raises(InvalidParameterValueException, match="does not match"):
        parse_function_name("fn:a", account_id=ACCOUNT, query_qualifier="b")
    with pytest.raises(InvalidParameterValueException):
        parse_function_name("fn", account_id=ACCOUNT, query_qualifier="bad qualifier")
    require_latest(parse_function_name("fn:$LATEST", account_id=ACCOUNT))
    with pytest.raises(ResourceNotFoundException, match=r"function:fn:2$"):
        require_latest(parse_function_name("fn:2", account_id=ACCOUNT))


def test_tagging_needs_an_unqualified_function_arn():
    assert parse_function_arn(ARN, account_id=ACCOUNT).name == "my-fn"
    for value in ("my-fn", f"{ARN}:$LATEST"):
        with pytest.raises(InvalidParameterValueException):
            parse_function_arn(value, account_id=ACCOUNT)


def test_role_arns():
    role = parse_role_arn(f"arn:aws:iam::{ACCOUNT}:role/service-role/my-role")
    assert (role.account_id, role.path, role.name) == (ACCOUNT, "/service-role/", "my-role")
    assert parse_role_arn(f"arn:aws:iam::{ACCOUNT}:role/plain").path == "/"
    for value in ("my-role", f"arn:aws:iam::{ACCOUNT}:user/x", "arn:aws:iam::1:role/x"):
        with pytest.raises(InvalidParameterValueException, match="at 'role' failed"):
            parse_role_arn(value)


def test_lambda_timestamps():
    moment = datetime(2019, 8, 14, 22, 26, 11, 234567, tzinfo=UTC)

    assert lambda_timestamp(moment) == "2019-08-14T22:26:11.234+0000"


def test_request_members_are_type_checked():
    params = Params.from_body(b'{"MemorySize": "big", "Environment": {"Variables": {"A": 1}}}')

    with pytest.raises(InvalidRequestContentException, match="'memorySize' must be an integer"):
        params.integer("MemorySize")
    environment = params.structure("Environment")
    assert environment is not None
    with pytest.raises(InvalidRequestContentException, match="environment.variables"):
        environment.string_map("Variables")
    with pytest.raises(InvalidRequestContentException):
        Params.from_body(b"[1, 2]")
    with pytest.raises(InvalidRequestContentException, match="base64"):
        Params.from_body(b'{"ZipFile": "***"}').blob("ZipFile")
    with pytest.raises(InvalidParameterValueException, match="'role' failed"):
        Params.from_body(b"{}").required("Role")


def test_the_log_tail_keeps_the_last_4_kb_of_whole_lines():
    lines = ["START", "x" * 5000, "END", "REPORT RequestId: 1\tDuration: 1.00 ms\t"]

    tail = base64.b64decode(log_tail(lines))

    assert len(tail) == 4096
    assert tail.endswith(b"END\nREPORT RequestId: 1\tDuration: 1.00 ms\t\n")
    assert base64.b64decode(log_tail(["a", "b\n"])) == b"a\nb\n"


def test_unsupported_operations_are_named():
    assert operation_name("GET", "/2018-10-31/layers", set()) == "ListLayers"
    assert operation_name("GET", "/2018-10-31/layers", {"find"}) == "GetLayerVersionByArn"
    assert operation_name("POST", "/2015-03-31/functions/fn/policy", set()) == "AddPermission"
    assert unsupported("GET", "/2015-03-31/nothing", set()).code == "UnknownOperationException"
    error = unsupported("DELETE", "/2015-03-31/functions/fn/policy/statement", set())
    assert (error.code, error.status) == ("UnsupportedOperationException", 501)


def test_throttling_is_shaped_for_botocore():
    response = TooManyRequestsException(
        "Rate exceeded",
        reason="ReservedFunctionConcurrentInvocationLimitExceeded",
        retry_after_seconds=3,
    ).response()

    assert response.status_code == 429
    assert response["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert response["Retry-After"] == "3"
    assert b'"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"' in response.content


@pytest.mark.django_db
def test_code_locations_expire(user):
    function = make_function(user, "fn")
    request = RequestFactory().get("/")

    token = code_location_url(request, function).rsplit("/", 1)[1]
    assert code_package_for_token(token).artifact.pk == function.code_id

    issued = time.time() - LIFETIME_SECONDS - 1
    with mock.patch("django.core.signing.time.time", return_value=issued):
        stale = code_location_url(request, function).rsplit("/", 1)[1]
    with pytest.raises(CodeLocationInvalid):
        code_package_for_token(stale)
    with pytest.raises(CodeLocationInvalid):
        code_package_for_token(signing.dumps({"sha256": "0" * 64}, salt="api.code-location"))
