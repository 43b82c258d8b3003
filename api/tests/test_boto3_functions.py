"""The control-plane operations, driven by boto3 against a live Stratus."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from django.contrib.auth.models import User
from django.urls import reverse

from api.services import access_key_create
from api.tests.conftest import HELLO, lambda_client, zip_of
from console.selectors import account_for_user
from console.tests.factories import make_function, make_user, signed_in_client
from functions.models import Function, Role

pytestmark = pytest.mark.django_db(transaction=True)

HANDLER = "lambda_function.lambda_handler"


def create(client: Any, role: str, name: str = "hello", **extra: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": role,
        "Handler": HANDLER,
        "Code": {"ZipFile": zip_of(HELLO)},
        **extra,
    }
    return dict(client.create_function(**arguments))


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def code_sha256(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def test_create_function_answers_like_lambda(lambda_api, role, account_id, user):
    package = zip_of(HELLO)

    created = create(
        lambda_api,
        role,
        Code={"ZipFile": package},
        Description="Says hello",
        MemorySize=256,
        Timeout=10,
        Environment={"Variables": {"GREETING": "hi"}},
        Architectures=["arm64"],
        EphemeralStorage={"Size": 1024},
        Tags={"team": "core"},
        Publish=True,
    )

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    # Publish=True answers with the version it published.
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:{account_id}:function:hello:1"
    assert created["Role"] == role
    assert created["Version"] == "1"
    assert created["CodeSha256"] == code_sha256(package)
    assert created["CodeSize"] == len(package)
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert created["Architectures"] == ["arm64"]
    assert created["EphemeralStorage"] == {"Size": 1024}
    assert created["State"] == "Active"
    assert created["LastUpdateStatus"] == "Successful"
    assert created["PackageType"] == "Zip"
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/hello"}
    assert created["RevisionId"]
    # Lambda's timestamp format: 2019-08-14T22:26:11.234+0000
    assert len(created["LastModified"]) == 28 and created["LastModified"].endswith("+0000")
    role_record = Role.objects.get(owner=user, name="lambda-role")
    assert role_record.path == "/"
    assert Function.objects.get(owner=user, name="hello").role == role_record


def test_a_role_arn_with_a_path_creates_the_role_with_that_path(lambda_api, account_id, user):
    arn = f"arn:aws:iam::{account_id}:role/service-role/my-role"

    assert create(lambda_api, arn)["Role"] == arn
    assert Role.objects.get(owner=user, name="my-role").path == "/service-role/"


def test_get_function_gives_configuration_code_location_tags_and_concurrency(lambda_api, role):
    package = zip_of(HELLO)
    create(lambda_api, role, Code={"ZipFile": package}, Tags={"team": "core"})
    lambda_api.put_function_concurrency(FunctionName="hello", ReservedConcurrentExecutions=5)

    function = lambda_api.get_function(FunctionName="hello")

    assert function["Configuration"]["FunctionName"] == "hello"
    assert function["Tags"] == {"team": "core"}
    assert function["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    assert function["Code"]["RepositoryType"] == "S3"
    download = requests.get(function["Code"]["Location"], timeout=10)
    assert download.status_code == 200
    assert download.content == package
    assert download.headers["Content-Type"] == "application/zip"
    tampered = requests.get(function["Code"]["Location"] + "x", timeout=10)
    assert tampered.status_code == 403


@pytest.mark.parametrize(
    "name_form",
    ["{name}", "{name}:$LATEST", "{account}:function:{name}", "{arn}", "{arn}:$LATEST"],
)
def test_function_names_are_accepted_in_every_form(lambda_api, role, account_id, name_form):
    create(lambda_api, role)
    arn = f"arn:aws:lambda:us-east-1:{account_id}:function:hello"

    configuration = lambda_api.get_function_configuration(
        FunctionName=name_form.format(name="hello", account=account_id, arn=arn)
    )

    assert configuration["FunctionName"] == "hello"
    expected_arn = f"{arn}:$LATEST" if name_form.endswith("$LATEST") else arn
    assert configuration["FunctionArn"] == expected_arn


def test_qualifiers_other_than_latest_do_not_exist_yet(lambda_api, role, account_id):
    create(lambda_api, role)

    with pytest.raises(ClientError) as version:
        lambda_api.get_function(FunctionName="hello", Qualifier="1")
    with pytest.raises(ClientError) as alias:
        lambda_api.get_function_configuration(FunctionName="hello:live")
    with pytest.raises(ClientError) as mismatch:
        lambda_api.get_function(FunctionName="hello:$LATEST", Qualifier="live")

    assert error_code(version) == (404, "ResourceNotFoundException")
    assert version.value.response["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:{account_id}:function:hello:1"
    )
    assert error_code(alias) == (404, "ResourceNotFoundException")
    assert error_code(mismatch) == (400, "InvalidParameterValueException")
    assert lambda_api.get_function(FunctionName="hello", Qualifier="$LATEST")


def test_list_functions_pages_with_the_paginator(lambda_api, role, user):
    names = ["alpha", "bravo", "charlie", "delta", "echo"]
    for name in reversed(names):
        make_function(user, name)

    pages = list(
        lambda_api.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
    )

    assert [len(page["Functions"]) for page in pages] == [2, 2, 1]
    assert [f["FunctionName"] for page in pages for f in page["Functions"]] == names
    assert "NextMarker" not in pages[-1]
    assert "State" not in pages[0]["Functions"][0]
    everything = lambda_api.list_functions(FunctionVersion="ALL", MaxItems=10000)
    assert [f["Version"] for f in everything["Functions"]] == ["$LATEST"] * 5


def test_list_functions_refuses_bad_page_sizes_and_markers(lambda_api):
    with pytest.raises(ClientError) as too_many:
        lambda_api.list_functions(MaxItems=10001)
    with pytest.raises(ClientError) as marker:
        lambda_api.list_functions(Marker="not-a-marker")

    assert error_code(too_many) == (400, "InvalidParameterValueException")
    assert error_code(marker) == (400, "InvalidParameterValueException")


def test_update_function_code_with_revision_ids_and_dry_run(lambda_api, role, user):
    created = create(lambda_api, role)
    new_package = zip_of("def lambda_handler(event, context):\n    return 2\n")

    dry_run = lambda_api.update_function_code(
        FunctionName="hello", ZipFile=new_package, DryRun=True
    )
    assert dry_run["CodeSha256"] == code_sha256(new_package)
    assert dry_run["RevisionId"] == created["RevisionId"]
    assert Function.objects.get(name="hello").code_sha256 == created["CodeSha256"]

    updated = lambda_api.update_function_code(
        FunctionName="hello", ZipFile=new_package, RevisionId=created["RevisionId"], Publish=True
    )
    assert updated["CodeSha256"] == code_sha256(new_package)
    assert updated["RevisionId"] != created["RevisionId"]
    assert updated["Version"] == "1"

    with pytest.raises(ClientError) as stale:
        lambda_api.update_function_code(
            FunctionName="hello", ZipFile=zip_of("x = 3"), RevisionId=created["RevisionId"]
        )
    assert error_code(stale) == (412, "PreconditionFailedException")
    assert Function.objects.get(name="hello").code_sha256 == code_sha256(new_package)

    with pytest.raises(ClientError) as not_a_zip:
        lambda_api.update_function_code(FunctionName="hello", ZipFile=b"not a zip")
    assert error_code(not_a_zip) == (400, "InvalidParameterValueException")


def test_update_function_configuration_is_partial_and_replaces_the_environment(
    lambda_api, role, account_id, user
):
    created = create(
        lambda_api, role, MemorySize=512, Environment={"Variables": {"AA": "1", "BB": "2"}}
    )

    updated = lambda_api.update_function_configuration(
        FunctionName="hello",
        Description="new",
        Environment={"Variables": {"CC": "3"}},
        RevisionId=created["RevisionId"],
    )

    assert updated["Description"] == "new"
    assert updated["MemorySize"] == 512
    assert updated["Environment"] == {"Variables": {"CC": "3"}}
    assert updated["RevisionId"] != created["RevisionId"]

    with pytest.raises(ClientError) as stale:
        lambda_api.update_function_configuration(
            FunctionName="hello", Timeout=30, RevisionId=created["RevisionId"]
        )
    assert error_code(stale) == (412, "PreconditionFailedException")
    assert Function.objects.get(name="hello").timeout == 3

    cleared = lambda_api.update_function_configuration(FunctionName="hello", Environment={})
    assert "Environment" not in cleared

    new_role = f"arn:aws:iam::{account_id}:role/other-role"
    assert (
        lambda_api.update_function_configuration(FunctionName="hello", Role=new_role)["Role"]
        == new_role
    )
    assert Function.objects.get(name="hello").role.name == "other-role"


def test_tags_by_function_arn(lambda_api, role, account_id):
    arn = create(lambda_api, role, Tags={"a": "1"})["FunctionArn"]

    lambda_api.tag_resource(Resource=arn, Tags={"b": "2", "c": "3"})
    lambda_api.untag_resource(Resource=arn, TagKeys=["a", "c"])

    assert lambda_api.list_tags(Resource=arn)["Tags"] == {"b": "2"}
    with pytest.raises(ClientError) as qualified:
        lambda_api.tag_resource(Resource=f"{arn}:$LATEST", Tags={"d": "4"})
    with pytest.raises(ClientError) as reserved:
        lambda_api.tag_resource(Resource=arn, Tags={"aws:owner": "x"})
    with pytest.raises(ClientError) as elsewhere:
        lambda_api.list_tags(Resource=arn.replace(account_id, "000000000000"))
    assert error_code(qualified) == (400, "InvalidParameterValueException")
    assert error_code(reserved) == (400, "InvalidParameterValueException")
    assert error_code(elsewhere) == (404, "ResourceNotFoundException")


def test_reserved_concurrency_is_stored_and_counted(lambda_api, role, user):
    create(lambda_api, role)
    make_function(user, "other")

    put = lambda_api.put_function_concurrency(
        FunctionName="hello", ReservedConcurrentExecutions=100
    )
    assert put["ReservedConcurrentExecutions"] == 100
    assert (
        lambda_api.get_function_concurrency(FunctionName="hello")["ReservedConcurrentExecutions"]
        == 100
    )
    settings = lambda_api.get_account_settings()
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 900
    assert settings["AccountUsage"]["FunctionCount"] == 2

    with pytest.raises(ClientError) as too_much:
        lambda_api.put_function_concurrency(FunctionName="other", ReservedConcurrentExecutions=850)
    assert error_code(too_much) == (400, "InvalidParameterValueException")
    assert "below its minimum value of [100]" in too_much.value.response["Error"]["Message"]

    lambda_api.delete_function_concurrency(FunctionName="hello")
    assert "ReservedConcurrentExecutions" not in lambda_api.get_function_concurrency(
        FunctionName="hello"
    )
    assert "Concurrency" not in lambda_api.get_function(FunctionName="hello")


def test_account_settings_report_limits_and_usage(lambda_api, role):
    package = zip_of(HELLO)
    create(lambda_api, role, Code={"ZipFile": package})

    settings = lambda_api.get_account_settings()

    assert settings["AccountLimit"] == {
        "TotalCodeSize": 80530636800,
        "CodeSizeUnzipped": 262144000,
        "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    }
    assert settings["AccountUsage"] == {"TotalCodeSize": len(package), "FunctionCount": 1}


def test_delete_function(lambda_api, role):
    create(lambda_api, role)

    with pytest.raises(ClientError) as latest:
        lambda_api.delete_function(FunctionName="hello", Qualifier="$LATEST")
    assert error_code(latest) == (400, "InvalidParameterValueException")

    deleted = lambda_api.delete_function(FunctionName="hello")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as gone:
        lambda_api.get_function(FunctionName="hello")
    assert error_code(gone) == (404, "ResourceNotFoundException")
    assert not Function.objects.filter(name="hello").exists()


def test_the_console_and_the_api_see_the_same_functions(lambda_api, role, user):
    create(lambda_api, role, name="from-the-api")
    make_function(user, "from-the-console")

    listed = [f["FunctionName"] for f in lambda_api.list_functions()["Functions"]]
    page = signed_in_client(user).get(reverse("functions:list")).content.decode()

    assert listed == ["from-the-api", "from-the-console"]
    assert "from-the-api" in page and "from-the-console" in page


def test_a_key_sees_only_its_users_functions(live_server, lambda_api, role, user):
    other = make_user("bob")
    make_function(other, "bobs")
    other_arn = f"arn:aws:lambda:us-east-1:{account_for_user(other).account_id}:function:bobs"

    calls = [
        lambda: lambda_api.get_function(FunctionName="bobs"),
        lambda: lambda_api.get_function(FunctionName=other_arn),
        lambda: lambda_api.update_function_configuration(FunctionName="bobs", Timeout=9),
        lambda: lambda_api.delete_function(FunctionName="bobs"),
        lambda: lambda_api.invoke(FunctionName="bobs", InvocationType="DryRun"),
        lambda: lambda_api.list_tags(Resource=other_arn),
    ]
    for call in calls:
        with pytest.raises(ClientError) as hidden:
            call()
        assert error_code(hidden) == (404, "ResourceNotFoundException")
    assert lambda_api.list_functions()["Functions"] == []
    assert Function.objects.get(name="bobs").timeout == 3
    bobs_client = lambda_client(live_server.url, access_key_create(user=other))
    assert [f["FunctionName"] for f in bobs_client.list_functions()["Functions"]] == ["bobs"]


class TestErrors:
    """Every error the API returns, provoked once, with its status and shape."""

    def test_resource_not_found(self, lambda_api, account_id):
        with pytest.raises(ClientError) as missing:
            lambda_api.get_function(FunctionName="ghost")

        assert error_code(missing) == (404, "ResourceNotFoundException")
        assert missing.value.response["Error"]["Message"] == (
            f"Function not found: arn:aws:lambda:us-east-1:{account_id}:function:ghost"
        )

    def test_resource_conflict(self, lambda_api, role):
        create(lambda_api, role)

        with pytest.raises(ClientError) as exists:
            create(lambda_api, role)

        assert error_code(exists) == (409, "ResourceConflictException")
        assert exists.value.response["Error"]["Message"] == "Function already exist: hello"

    def test_invalid_parameter_values(self, lambda_api, role):
        with pytest.raises(ClientError) as memory:
            create(lambda_api, role, MemorySize=20000)
        with pytest.raises(ClientError) as bad_role:
            create(lambda_api, "not-a-role-arn")
        with pytest.raises(ClientError) as runtime:
            create(lambda_api, role, Runtime="nodejs20.x")
        with pytest.raises(ClientError) as layers:
            create(lambda_api, role, Layers=["arn:aws:lambda:us-east-1:123456789012:layer:x:1"])

        for error in (memory, bad_role, runtime, layers):
            assert error_code(error) == (400, "InvalidParameterValueException")
        assert bad_role.value.response["Error"]["Message"] == (
            "1 validation error detected: Value 'not-a-role-arn' at 'role' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
        )
        assert not Function.objects.exists()
        assert not Role.objects.exists()

    def test_invalid_request_content(self, lambda_api, role):
        create(lambda_api, role)

        def broken_body(request: Any, **_: Any) -> None:
            request.data = b"{not json"

        lambda_api.meta.events.register(
            "before-sign.lambda.UpdateFunctionConfiguration", broken_body
        )
        with pytest.raises(ClientError) as broken:
            lambda_api.update_function_configuration(FunctionName="hello", Timeout=5)

        assert error_code(broken) == (400, "InvalidRequestContentException")
        assert broken.value.response["Error"]["Message"].startswith(
            "Could not parse request body into json"
        )

    def test_request_too_large(self, lambda_api, role):
        create(lambda_api, role)

        with pytest.raises(ClientError) as too_large:
            lambda_api.invoke(FunctionName="hello", Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')

        assert error_code(too_large) == (413, "RequestTooLargeException")
        assert too_large.value.response["Error"]["Message"] == (
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        )

    def test_unsupported_media_type(self, lambda_api, role):
        create(lambda_api, role)

        def xml(request: Any, **_: Any) -> None:
            request.headers["Content-Type"] = "application/xml"

        lambda_api.meta.events.register("before-sign.lambda.Invoke", xml)
        with pytest.raises(ClientError) as unsupported:
            lambda_api.invoke(FunctionName="hello", Payload=b"<a/>")

        assert error_code(unsupported) == (415, "UnsupportedMediaTypeException")

    def test_service_exception(self, lambda_api, role, monkeypatch):
        create(lambda_api, role)

        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the database is on fire")

        monkeypatch.setattr("api.views.functions.function_configuration", broken)
        with pytest.raises(ClientError) as failure:
            lambda_api.get_function_configuration(FunctionName="hello")

        assert error_code(failure) == (500, "ServiceException")
        body = failure.value.response["Error"]
        assert "on fire" not in body["Message"]

    def test_unsupported_operations_get_a_clean_error(self, lambda_api, role):
        create(lambda_api, role)

        with pytest.raises(ClientError) as layers:
            lambda_api.list_layers()
        with pytest.raises(ClientError) as policy:
            lambda_api.get_policy(FunctionName="hello")
        with pytest.raises(ClientError) as url_config:
            lambda_api.get_function_url_config(FunctionName="hello")

        assert error_code(layers) == (501, "UnsupportedOperationException")
        assert "ListLayers" in layers.value.response["Error"]["Message"]
        assert error_code(policy) == (501, "UnsupportedOperationException")
        assert "GetPolicy" in policy.value.response["Error"]["Message"]
        assert error_code(url_config) == (501, "UnsupportedOperationException")

    def test_unknown_paths_answer_in_json(self, lambda_api):
        def elsewhere(request: Any, **_: Any) -> None:
            request.url = request.url.replace("/2016-08-19/account-settings", "/2015-03-31/nope")

        lambda_api.meta.events.register("before-sign.lambda.GetAccountSettings", elsewhere)
        with pytest.raises(ClientError) as unknown:
            lambda_api.get_account_settings()

        assert error_code(unknown) == (404, "UnknownOperationException")
        assert unknown.value.response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == (
            "application/json"
        )
        assert json.loads(json.dumps(unknown.value.response["Error"]))


def test_an_unrecognised_key_is_a_client_error(live_server, user: User):
    key = access_key_create(user=user)
    key.access_key.access_key_id = "AKIAZZZZZZZZZZZZZZZZ"

    with pytest.raises(ClientError) as refused:
        lambda_client(live_server.url, key).list_functions()

    assert error_code(refused) == (403, "UnrecognizedClientException")
