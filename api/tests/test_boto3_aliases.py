"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases and alias qualifiers,
through boto3."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from api.tests.conftest import zip_of
from api.tests.test_boto3_functions import error_code

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = """
    def lambda_handler(event, context):
        return {{"answer": {answer}, "arn": context.invoked_function_arn}}
"""


def with_versions(client: Any, role: str, count: int = 2) -> None:
    """hello with versions 1..count, each answering its number; $LATEST answers 0."""
    client.create_function(
        FunctionName="hello",
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": zip_of(ANSWER.format(answer=1))},
        Publish=True,
    )
    for number in range(2, count + 1):
        client.update_function_code(
            FunctionName="hello", ZipFile=zip_of(ANSWER.format(answer=number)), Publish=True
        )
    client.update_function_code(FunctionName="hello", ZipFile=zip_of(ANSWER.format(answer=0)))


def test_create_and_get_alias_answer_like_lambda(lambda_api, role, account_id):
    with_versions(lambda_api, role)

    created = lambda_api.create_alias(
        FunctionName="hello",
        Name="live",
        FunctionVersion="1",
        Description="production",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    fetched = lambda_api.get_alias(FunctionName="hello", Name="live")

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == f"arn:aws:lambda:us-east-1:{account_id}:function:hello:live"
    assert created["Name"] == "live"
    assert created["FunctionVersion"] == "1"
    assert created["Description"] == "production"
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    assert created["RevisionId"]
    fetched.pop("ResponseMetadata")
    created.pop("ResponseMetadata")
    assert fetched == created


def test_a_plain_alias_has_no_routing_config(lambda_api, role):
    with_versions(lambda_api, role, 1)

    created = lambda_api.create_alias(FunctionName="hello", Name="edge", FunctionVersion="$LATEST")

    assert created["FunctionVersion"] == "$LATEST"
    assert "RoutingConfig" not in created
    assert created["Description"] == ""


def test_create_alias_errors(lambda_api, role):
    with_versions(lambda_api, role)
    lambda_api.create_alias(FunctionName="hello", Name="live", FunctionVersion="1")

    def refused(**arguments: Any) -> tuple[tuple[int, str], str]:
        with pytest.raises(ClientError) as failure:
            lambda_api.create_alias(**{"FunctionName": "hello", **arguments})
        return error_code(failure), failure.value.response["Error"]["Message"]

    exists = refused(Name="live", FunctionVersion="2")
    numeric = refused(Name="123", FunctionVersion="1")
    missing_version = refused(Name="next", FunctionVersion="9")
    bad_version = refused(Name="next", FunctionVersion="beta")
    weighted_latest = refused(
        Name="next",
        FunctionVersion="$LATEST",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )
    same_twice = refused(
        Name="next", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}
    )
    two_weights = refused(
        Name="next",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}},
    )
    heavy = refused(
        Name="next", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}}
    )
    no_function = refused(FunctionName="nobody", Name="next", FunctionVersion="1")
    qualified = refused(FunctionName="hello:1", Name="next", FunctionVersion="1")

    assert exists[0] == (409, "ResourceConflictException")
    assert exists[1].startswith("Alias already exists: arn:aws:lambda:")
    assert numeric[0] == (400, "InvalidParameterValueException")
    assert "(?!^[0-9]+$)([a-zA-Z0-9-_]+)" in numeric[1]
    assert missing_version[0] == (404, "ResourceNotFoundException")
    assert missing_version[1].endswith(":function:hello:9")
    assert bad_version[0] == (400, "InvalidParameterValueException")
    assert weighted_latest == (
        (400, "InvalidParameterValueException"),
        "$LATEST is not supported for an alias pointing to more than 1 version",
    )
    assert same_twice[0] == (400, "InvalidParameterValueException")
    assert two_weights[0] == (400, "InvalidParameterValueException")
    assert heavy[0] == (400, "InvalidParameterValueException")
    assert "routingConfig.additionalVersionWeights" in heavy[1]
    assert no_function[0] == (404, "ResourceNotFoundException")
    assert qualified[0] == (400, "InvalidParameterValueException")


def test_get_alias_that_is_not_there(lambda_api, role, account_id):
    with_versions(lambda_api, role, 1)

    with pytest.raises(ClientError) as missing:
        lambda_api.get_alias(FunctionName="hello", Name="nope")

    assert error_code(missing) == (404, "ResourceNotFoundException")
    assert missing.value.response["Error"]["Message"] == (
        f"Alias not found: arn:aws:lambda:us-east-1:{account_id}:function:hello:nope"
    )


def test_update_alias(lambda_api, role):
    with_versions(lambda_api, role, 3)
    created = lambda_api.create_alias(
        FunctionName="hello",
        Name="live",
        FunctionVersion="1",
        Description="keep",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )

    moved = lambda_api.update_alias(
        FunctionName="hello", Name="live", FunctionVersion="3", RevisionId=created["RevisionId"]
    )
    unweighted = lambda_api.update_alias(
        FunctionName="hello", Name="live", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    with pytest.raises(ClientError) as stale:
        lambda_api.update_alias(
            FunctionName="hello", Name="live", Description="x", RevisionId=created["RevisionId"]
        )
    with pytest.raises(ClientError) as missing:
        lambda_api.update_alias(FunctionName="hello", Name="nope", FunctionVersion="1")
    with pytest.raises(ClientError) as unpublished:
        lambda_api.update_alias(FunctionName="hello", Name="live", FunctionVersion="8")

    assert moved["FunctionVersion"] == "3"
    assert moved["Description"] == "keep"
    assert moved["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    assert moved["RevisionId"] != created["RevisionId"]
    assert "RoutingConfig" not in unweighted
    assert error_code(stale) == (412, "PreconditionFailedException")
    assert error_code(missing) == (404, "ResourceNotFoundException")
    assert error_code(unpublished) == (404, "ResourceNotFoundException")
    assert lambda_api.get_alias(FunctionName="hello", Name="live")["FunctionVersion"] == "3"


def test_delete_alias(lambda_api, role):
    with_versions(lambda_api, role, 1)
    lambda_api.create_alias(FunctionName="hello", Name="live", FunctionVersion="1")

    deleted = lambda_api.delete_alias(FunctionName="hello", Name="live")
    again = lambda_api.delete_alias(FunctionName="hello", Name="live")

    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as gone:
        lambda_api.get_alias(FunctionName="hello", Name="live")
    assert error_code(gone) == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as no_function:
        lambda_api.delete_alias(FunctionName="nobody", Name="live")
    assert error_code(no_function) == (404, "ResourceNotFoundException")


def test_list_aliases_pages_and_filters(lambda_api, role):
    with_versions(lambda_api, role, 2)
    for name, version in (("a", "1"), ("b", "2"), ("c", "1"), ("d", "$LATEST")):
        lambda_api.create_alias(FunctionName="hello", Name=name, FunctionVersion=version)
    lambda_api.create_alias(
        FunctionName="hello",
        Name="e",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )

    first = lambda_api.list_aliases(FunctionName="hello", MaxItems=2)
    second = lambda_api.list_aliases(FunctionName="hello", MaxItems=2, Marker=first["NextMarker"])
    third = lambda_api.list_aliases(FunctionName="hello", MaxItems=2, Marker=second["NextMarker"])
    of_one = lambda_api.list_aliases(FunctionName="hello", FunctionVersion="1")
    paginated = [
        alias["Name"]
        for page in lambda_api.get_paginator("list_aliases").paginate(
            FunctionName="hello", PaginationConfig={"PageSize": 3}
        )
        for alias in page["Aliases"]
    ]

    assert [alias["Name"] for alias in first["Aliases"]] == ["a", "b"]
    assert [alias["Name"] for alias in second["Aliases"]] == ["c", "d"]
    assert [alias["Name"] for alias in third["Aliases"]] == ["e"]
    assert "NextMarker" not in third
    assert [alias["Name"] for alias in of_one["Aliases"]] == ["a", "c", "e"]
    assert paginated == ["a", "b", "c", "d", "e"]
    with pytest.raises(ClientError) as bad_marker:
        lambda_api.list_aliases(FunctionName="hello", Marker="nonsense")
    with pytest.raises(ClientError) as bad_version:
        lambda_api.list_aliases(FunctionName="hello", FunctionVersion="beta")
    with pytest.raises(ClientError) as missing:
        lambda_api.list_aliases(FunctionName="nobody")
    assert error_code(bad_marker) == (400, "InvalidParameterValueException")
    assert error_code(bad_version) == (400, "InvalidParameterValueException")
    assert error_code(missing) == (404, "ResourceNotFoundException")


def test_get_function_and_configuration_by_alias(lambda_api, role, account_id):
    with_versions(lambda_api, role)
    lambda_api.create_alias(FunctionName="hello", Name="live", FunctionVersion="1")

    function = lambda_api.get_function(FunctionName="hello", Qualifier="live")
    configuration = lambda_api.get_function_configuration(FunctionName="hello:live")

    arn = f"arn:aws:lambda:us-east-1:{account_id}:function:hello:live"
    assert function["Configuration"]["FunctionArn"] == arn
    assert function["Configuration"]["Version"] == "1"
    assert configuration["FunctionArn"] == arn
    assert configuration["Version"] == "1"
    with pytest.raises(ClientError) as missing:
        lambda_api.get_function_configuration(FunctionName="hello", Qualifier="nope")
    assert error_code(missing) == (404, "ResourceNotFoundException")


def test_a_version_an_alias_uses_cannot_be_deleted(lambda_api, role):
    with_versions(lambda_api, role)
    lambda_api.create_alias(FunctionName="hello", Name="live", FunctionVersion="1")

    with pytest.raises(ClientError) as in_use:
        lambda_api.delete_function(FunctionName="hello", Qualifier="1")
    with pytest.raises(ClientError) as alias:
        lambda_api.delete_function(FunctionName="hello", Qualifier="live")

    assert error_code(in_use) == (409, "ResourceConflictException")
    assert in_use.value.response["Error"]["Message"] == (
        "Unable to delete version because the following aliases reference it: [live]"
    )
    assert error_code(alias) == (400, "InvalidParameterValueException")
    lambda_api.delete_alias(FunctionName="hello", Name="live")
    lambda_api.delete_function(FunctionName="hello", Qualifier="1")
    versions = lambda_api.list_versions_by_function(FunctionName="hello")["Versions"]
    assert [version["Version"] for version in versions] == ["$LATEST", "2"]


def test_invoke_an_alias(lambda_api, role, account_id):
    with_versions(lambda_api, role)
    lambda_api.create_alias(FunctionName="hello", Name="live", FunctionVersion="2")

    by_qualifier = lambda_api.invoke(FunctionName="hello", Qualifier="live", LogType="Tail")
    by_name = lambda_api.invoke(FunctionName="hello:live")
    dry_run = lambda_api.invoke(FunctionName="hello:live", InvocationType="DryRun")

    assert json.loads(by_qualifier["Payload"].read()) == {
        "answer": 2,
        "arn": f"arn:aws:lambda:us-east-1:{account_id}:function:hello:live",
    }
    assert by_qualifier["ExecutedVersion"] == "2"
    assert "Version: 2" in base64.b64decode(by_qualifier["LogResult"]).decode()
    assert json.loads(by_name["Payload"].read())["answer"] == 2
    assert dry_run["ExecutedVersion"] == "2"
    with pytest.raises(ClientError) as missing:
        lambda_api.invoke(FunctionName="hello", Qualifier="nope")
    assert error_code(missing) == (404, "ResourceNotFoundException")


def test_a_weighted_alias_splits_api_invocations(lambda_api, role):
    with_versions(lambda_api, role)
    lambda_api.create_alias(
        FunctionName="hello",
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    runs = 400

    executed = [
        lambda_api.invoke(FunctionName="hello:canary")["ExecutedVersion"] for _ in range(runs)
    ]

    # Binomial(400, 0.3) for version 2; four standard deviations either side.
    assert set(executed) == {"1", "2"}
    assert abs(executed.count("2") - runs * 0.3) <= 4 * math.sqrt(runs * 0.3 * 0.7)
