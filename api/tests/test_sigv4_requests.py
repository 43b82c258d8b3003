"""Signature Version 4 over HTTP: sign with botocore, change one thing, expect the 403 AWS
gives for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.contrib.auth.models import User

from api.errors import SIGNATURE_MISMATCH
from api.models import AccessKey
from api.services import (
    NewAccessKey,
    access_key_activate,
    access_key_create,
    access_key_deactivate,
    access_key_delete,
)
from api.tests.conftest import REGION
from console.tests.factories import make_function

pytestmark = pytest.mark.django_db(transaction=True)

LIST_PATH = "/2015-03-31/functions"


def sign(
    method: str,
    url: str,
    key: NewAccessKey,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    region: str = REGION,
    service: str = "lambda",
    secret: str | None = None,
    at: datetime | None = None,
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    credentials = Credentials(key.access_key.access_key_id, secret or key.secret_access_key)
    moment = at or datetime.now(UTC)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        SigV4Auth(credentials, service, region).add_auth(request)
    return request


def send(
    request: AWSRequest,
    *,
    method: str | None = None,
    url: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> requests.Response:
    prepared = request.prepare()
    sent_headers = {name: value for name, value in prepared.headers.items() if name not in drop}
    sent_headers.update(headers or {})
    return requests.request(
        method or prepared.method,
        url or prepared.url,
        headers=sent_headers,
        data=prepared.body if body is None else body,
        timeout=30,
    )


def error_of(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    return (
        response.status_code,
        response.headers["x-amzn-ErrorType"],
        body.get("message") or body.get("Message") or "",
    )


@pytest.fixture
def key(user: User) -> NewAccessKey:
    return access_key_create(user=user)


@pytest.fixture
def list_url(live_server: Any) -> str:
    return f"{live_server.url}{LIST_PATH}?MaxItems=5"


def test_an_unchanged_signed_request_is_accepted(key, list_url):
    response = send(sign("GET", list_url, key))

    assert response.status_code == 200, response.text
    assert response.json() == {"Functions": []}
    access_key = AccessKey.objects.get(pk=key.access_key.pk)
    assert access_key.last_used_at is not None
    assert (access_key.last_used_region, access_key.last_used_service) == (REGION, "lambda")


def test_a_different_method_breaks_the_signature(key, list_url):
    response = send(sign("GET", list_url, key), method="DELETE")

    assert error_of(response) == (403, "InvalidSignatureException", SIGNATURE_MISMATCH)


def test_a_different_path_breaks_the_signature(key, live_server, user):
    make_function(user, "one")
    make_function(user, "two")
    signed = sign("GET", f"{live_server.url}{LIST_PATH}/one", key)

    response = send(signed, url=f"{live_server.url}{LIST_PATH}/two")

    assert error_of(response)[:2] == (403, "InvalidSignatureException")


def test_a_different_query_breaks_the_signature(key, list_url):
    response = send(sign("GET", list_url, key), url=list_url.replace("MaxItems=5", "MaxItems=6"))

    assert error_of(response)[:2] == (403, "InvalidSignatureException")


def test_a_changed_signed_header_breaks_the_signature(key, live_server, user):
    make_function(user, "fn")
    url = f"{live_server.url}{LIST_PATH}/fn/invocations"
    signed = sign("POST", url, key, body=b"{}", headers={"X-Amz-Invocation-Type": "DryRun"})

    assert send(signed).status_code == 204
    changed = send(signed, headers={"X-Amz-Invocation-Type": "Event"})
    assert error_of(changed)[:2] == (403, "InvalidSignatureException")


def test_a_changed_body_breaks_the_signature(key, live_server, user):
    make_function(user, "fn")
    url = f"{live_server.url}{LIST_PATH}/fn/configuration"
    signed = sign("PUT", url, key, body=json.dumps({"Description": "signed"}).encode())

    response = send(signed, body=json.dumps({"Description": "forged"}).encode())

    assert error_of(response)[:2] == (403, "InvalidSignatureException")
    assert send(signed).json()["Description"] == "signed"


def test_a_payload_hash_header_must_match_the_body(key, live_server, user):
    make_function(user, "fn")
    url = f"{live_server.url}{LIST_PATH}/fn/configuration"
    forged_hash = "0" * 64
    signed = sign(
        "PUT", url, key, body=b'{"Description": "x"}', headers={"X-Amz-Content-SHA256": forged_hash}
    )

    status, error_type, message = error_of(send(signed))

    assert (status, error_type) == (403, "InvalidSignatureException")
    assert "x-amz-content-sha256" in message


@pytest.mark.parametrize(
    ("minutes", "wording"),
    [(-16, "Signature expired: "), (16, "Signature not yet current: ")],
)
def test_a_date_more_than_15_minutes_off_is_refused(key, list_url, minutes, wording):
    at = datetime.now(UTC) + timedelta(minutes=minutes)

    status, error_type, message = error_of(send(sign("GET", list_url, key, at=at)))

    assert (status, error_type) == (403, "InvalidSignatureException")
    assert message.startswith(wording + at.strftime("%Y%m%dT%H%M%SZ"))
    assert message.endswith(" - 15 min.)" if minutes < 0 else " + 15 min.)")


@pytest.mark.parametrize("minutes", [-14, 14])
def test_a_date_within_15_minutes_is_accepted(key, list_url, minutes):
    at = datetime.now(UTC) + timedelta(minutes=minutes)

    assert send(sign("GET", list_url, key, at=at)).status_code == 200


def test_another_region_is_refused(key, list_url):
    response = send(sign("GET", list_url, key, region="eu-west-1"))

    assert error_of(response) == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    )


def test_another_service_is_refused(key, list_url):
    response = send(sign("GET", list_url, key, service="s3"))

    assert error_of(response) == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'lambda'. ",
    )


def test_a_wrong_secret_is_refused(key, list_url):
    response = send(sign("GET", list_url, key, secret="x" * 40))

    assert error_of(response) == (403, "InvalidSignatureException", SIGNATURE_MISMATCH)


def test_a_missing_signature_is_incomplete(key, list_url):
    signed = sign("GET", list_url, key)
    authorization = signed.headers["Authorization"].split(", Signature=")[0]

    status, error_type, message = error_of(send(signed, headers={"Authorization": authorization}))

    assert (status, error_type) == (403, "IncompleteSignatureException")
    assert message.startswith("Authorization header requires 'Signature' parameter.")


def test_a_malformed_credential_is_incomplete(key, list_url):
    signed = sign("GET", list_url, key)
    authorization = signed.headers["Authorization"].replace("/aws4_request", "")

    status, error_type, message = error_of(send(signed, headers={"Authorization": authorization}))

    assert (status, error_type) == (403, "IncompleteSignatureException")
    assert message.startswith("Credential must have exactly 5 slash-delimited elements")


def test_a_missing_date_is_incomplete(key, list_url):
    response = send(sign("GET", list_url, key), drop=("X-Amz-Date",))

    status, error_type, message = error_of(response)
    assert (status, error_type) == (403, "IncompleteSignatureException")
    assert "'X-Amz-Date' or a 'Date' header" in message


def test_an_unsigned_request_is_missing_its_token(list_url):
    response = requests.get(list_url, timeout=10)

    assert error_of(response) == (
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


def test_an_unknown_key_is_unrecognised(key, list_url):
    unknown = NewAccessKey(
        access_key=AccessKey(access_key_id="AKIAAAAAAAAAAAAAAAAA"),
        secret_access_key=key.secret_access_key,
    )

    response = send(sign("GET", list_url, unknown))

    assert error_of(response) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_an_inactive_key_is_unrecognised_until_activated(key, list_url):
    access_key_deactivate(access_key=key.access_key)
    assert error_of(send(sign("GET", list_url, key)))[:2] == (403, "UnrecognizedClientException")

    access_key_activate(access_key=key.access_key)
    assert send(sign("GET", list_url, key)).status_code == 200


def test_a_deleted_key_is_unrecognised(key, list_url):
    access_key_delete(access_key=key.access_key)

    assert error_of(send(sign("GET", list_url, key)))[:2] == (403, "UnrecognizedClientException")


def test_a_path_with_an_encoded_arn_verifies(key, live_server, user):
    from console.selectors import account_for_user

    make_function(user, "fn")
    arn = f"arn:aws:lambda:{REGION}:{account_for_user(user).account_id}:function:fn:$LATEST"
    encoded = arn.replace(":", "%3A").replace("$", "%24")

    response = send(sign("GET", f"{live_server.url}{LIST_PATH}/{encoded}/configuration", key))

    assert response.status_code == 200, response.text
    assert response.json()["FunctionArn"] == arn


def test_authentication_comes_before_everything_else(live_server):
    for method, path in [("GET", "/2018-10-31/layers"), ("GET", "/2015-03-31/nothing-here")]:
        response = requests.request(method, f"{live_server.url}{path}", timeout=10)
        assert error_of(response)[:2] == (403, "MissingAuthenticationTokenException")


def test_a_large_unsigned_upload_is_refused_before_it_is_read(live_server):
    body = json.dumps({"FunctionName": "big", "Code": {"ZipFile": "A" * (2 * 1024 * 1024)}})

    response = requests.put(
        f"{live_server.url}{LIST_PATH}/big/configuration", data=body.encode(), timeout=30
    )

    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
