"""PublishVersion, ListVersionsByFunction and qualified names, through boto3."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from api.tests.conftest import zip_of
from api.tests.test_boto3_functions import code_sha256, create, error_code

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = """
    def lambda_handler(event, context):
        return {{"answer": {answer}, "version": context.function_version}}
"""


def package(answer: int) -> bytes:
    return zip_of(ANSWER.format(answer=answer))


def update_code(client: Any, answer: int, **extra: Any) -> dict[str, Any]:
    return dict(client.update_function_code(FunctionName="hello", ZipFile=package(answer), **extra))


def test_publish_version_answers_like_lambda(lambda_api, role, account_id):
    created = create(lambda_api, role, Description="the function", MemorySize=256)

    published = lambda_api.publish_version(FunctionName="hello", Description="first")
    again = lambda_api.publish_version(FunctionName="hello", Description="again")

    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert published["Version"] == "1"
    assert published["FunctionArn"] == f"arn:aws:lambda:us-east-1:{account_id}:function:hello:1"
    assert published["Description"] == "first"
    assert published["CodeSha256"] == created["CodeSha256"]
    assert published["MemorySize"] == 256
    assert published["State"] == "Active"
    assert published["RevisionId"] != created["RevisionId"]
    assert again["Version"] == "1"
    assert again["Description"] == "first"


def test_publish_version_preconditions(lambda_api, role):
    created = create(lambda_api, role)

    with pytest.raises(ClientError) as stale_revision:
        lambda_api.publish_version(FunctionName="hello", RevisionId="not-the-revision")
    with pytest.raises(ClientError) as other_code:
        lambda_api.publish_version(FunctionName="hello", CodeSha256="A" * 43 + "=")
    with pytest.raises(ClientError) as missing:
        lambda_api.publish_version(FunctionName="nobody")

    assert error_code(stale_revision) == (412, "PreconditionFailedException")
    assert error_code(other_code) == (400, "InvalidParameterValueException")
    assert "CodeSHA256" in other_code.value.response["Error"]["Message"]
    assert error_code(missing) == (404, "ResourceNotFoundException")
    published = lambda_api.publish_version(
        FunctionName="hello",
        CodeSha256=created["CodeSha256"],
        RevisionId=created["RevisionId"],
    )
    assert published["Version"] == "1"


def test_list_versions_pages_with_latest_first(lambda_api, role):
    create(lambda_api, role)
    for answer in range(1, 5):
        update_code(lambda_api, answer, Publish=True)

    paginator = lambda_api.get_paginator("list_versions_by_function")
    pages = list(paginator.paginate(FunctionName="hello", PaginationConfig={"PageSize": 2}))

    versions = [entry["Version"] for page in pages for entry in page["Versions"]]
    assert versions == ["$LATEST", "1", "2", "3", "4"]
    assert len(pages) == 3
    assert "State" not in pages[0]["Versions"][1]
    with pytest.raises(ClientError) as bad_marker:
        lambda_api.list_versions_by_function(FunctionName="hello", Marker="nonsense")
    assert error_code(bad_marker) == (400, "InvalidParameterValueException")


def test_publish_on_create_and_update_returns_the_version(lambda_api, role):
    created = create(lambda_api, role, Publish=True)
    second = package(2)
    updated = lambda_api.update_function_code(FunctionName="hello", ZipFile=second, Publish=True)
    unchanged = lambda_api.update_function_code(FunctionName="hello", ZipFile=second, Publish=True)

    assert created["Version"] == "1"
    assert updated["Version"] == "2"
    assert unchanged["Version"] == "2"
    assert lambda_api.get_function(FunctionName="hello")["Configuration"]["Version"] == "$LATEST"


def test_get_function_with_a_version_qualifier(lambda_api, role, account_id):
    create(lambda_api, role)
    lambda_api.publish_version(FunctionName="hello")
    latest = update_code(lambda_api, 2)

    by_query = lambda_api.get_function(FunctionName="hello", Qualifier="1")
    by_name = lambda_api.get_function_configuration(FunctionName="hello:1")
    by_arn = lambda_api.get_function_configuration(
        FunctionName=f"arn:aws:lambda:us-east-1:{account_id}:function:hello:1"
    )

    assert by_query["Configuration"]["Version"] == "1"
    assert by_query["Configuration"]["CodeSha256"] != latest["CodeSha256"]
    assert by_name["Version"] == by_arn["Version"] == "1"
    assert by_name["CodeSha256"] == by_query["Configuration"]["CodeSha256"]
    download = requests.get(by_query["Code"]["Location"], timeout=10)
    assert download.status_code == 200
    assert code_sha256(download.content) == by_query["Configuration"]["CodeSha256"]
    for missing in ({"Qualifier": "7"}, {"Qualifier": "live"}):
        with pytest.raises(ClientError) as failure:
            lambda_api.get_function(FunctionName="hello", **missing)
        assert error_code(failure) == (404, "ResourceNotFoundException")


def test_delete_a_version(lambda_api, role):
    create(lambda_api, role, Publish=True)
    update_code(lambda_api, 2, Publish=True)

    deleted = lambda_api.delete_function(FunctionName="hello", Qualifier="1")

    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    versions = lambda_api.list_versions_by_function(FunctionName="hello")["Versions"]
    assert [entry["Version"] for entry in versions] == ["$LATEST", "2"]
    with pytest.raises(ClientError) as again:
        lambda_api.delete_function(FunctionName="hello", Qualifier="1")
    assert error_code(again) == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as latest:
        lambda_api.delete_function(FunctionName="hello", Qualifier="$LATEST")
    assert error_code(latest) == (400, "InvalidParameterValueException")
    lambda_api.delete_function(FunctionName="hello")
    with pytest.raises(ClientError) as gone:
        lambda_api.list_versions_by_function(FunctionName="hello")
    assert error_code(gone) == (404, "ResourceNotFoundException")


def test_list_functions_with_all_versions(lambda_api, role):
    create(lambda_api, role, name="alpha", Publish=True)
    create(lambda_api, role, name="beta")
    lambda_api.update_function_code(FunctionName="alpha", ZipFile=package(2), Publish=True)

    paginator = lambda_api.get_paginator("list_functions")
    every = [
        (entry["FunctionName"], entry["Version"])
        for page in paginator.paginate(FunctionVersion="ALL", PaginationConfig={"PageSize": 2})
        for entry in page["Functions"]
    ]
    latest_only = [
        (entry["FunctionName"], entry["Version"])
        for page in paginator.paginate(PaginationConfig={"PageSize": 1})
        for entry in page["Functions"]
    ]

    assert every == [("alpha", "$LATEST"), ("alpha", "1"), ("alpha", "2"), ("beta", "$LATEST")]
    assert latest_only == [("alpha", "$LATEST"), ("beta", "$LATEST")]


@pytest.mark.worker
def test_invoke_a_version(lambda_api, role, live_worker):
    lambda_api.create_function(
        FunctionName="hello",
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": package(1)},
        Publish=True,
    )
    update_code(lambda_api, 2)

    pinned = lambda_api.invoke(FunctionName="hello", Qualifier="1", LogType="Tail")
    by_name = lambda_api.invoke(FunctionName="hello:1")
    latest = lambda_api.invoke(FunctionName="hello")
    dry_run = lambda_api.invoke(FunctionName="hello", Qualifier="1", InvocationType="DryRun")

    assert json.loads(pinned["Payload"].read()) == {"answer": 1, "version": "1"}
    assert pinned["ExecutedVersion"] == "1"
    assert pinned["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == "1"
    assert "Version: 1" in base64.b64decode(pinned["LogResult"]).decode()
    assert json.loads(by_name["Payload"].read())["answer"] == 1
    assert json.loads(latest["Payload"].read()) == {"answer": 2, "version": "$LATEST"}
    assert latest["ExecutedVersion"] == "$LATEST"
    assert dry_run["ExecutedVersion"] == "1"
    with pytest.raises(ClientError) as missing:
        lambda_api.invoke(FunctionName="hello", Qualifier="5")
    assert error_code(missing) == (404, "ResourceNotFoundException")
