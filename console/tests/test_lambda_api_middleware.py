"""Lambda API requests are answered before the console's middlewares; console pages and
the API's other views still go through all of them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.contrib.auth.models import User
from django.test import Client

from api.services import access_key_create
from console.tests.factories import make_function

pytestmark = pytest.mark.django_db

CONSOLE_ONLY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


def signed_get(client: Client, path: str, user: User) -> Any:
    key = access_key_create(user=user)
    request = AWSRequest(method="GET", url=f"http://testserver{path}")
    credentials = Credentials(key.access_key.access_key_id, key.secret_access_key)
    SigV4Auth(credentials, "lambda", "us-east-1").add_auth(request)
    headers = {
        f"HTTP_{name.upper().replace('-', '_')}": value for name, value in request.headers.items()
    }
    return client.get(path, HTTP_HOST="testserver", **headers)


def test_signed_api_request_skips_the_console_middlewares(user):
    make_function(user, name="orders")

    response = signed_get(Client(), "/2015-03-31/functions/orders", user)

    assert response.status_code == 200
    assert response.json()["Configuration"]["FunctionName"] == "orders"
    for header in CONSOLE_ONLY_HEADERS:
        assert header not in response
    assert not response.cookies


def test_unsigned_api_request_gets_the_aws_error_without_console_headers():
    response = Client().get("/2015-03-31/functions")

    assert response.status_code == 403
    assert "x-amzn-ErrorType" in response
    assert "Content-Security-Policy" not in response


def test_api_requests_still_check_the_host_header():
    response = Client().get("/2015-03-31/functions", HTTP_HOST="evil.example")

    assert response.status_code == 400


def test_console_pages_keep_their_middlewares(user):
    client = Client()
    client.force_login(user)

    response = client.get("/functions/")

    assert response.status_code == 200
    for header in CONSOLE_ONLY_HEADERS:
        assert header in response


def test_other_views_of_the_api_app_keep_the_console_middlewares():
    response = Client().get("/account/access-keys/")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert "X-Frame-Options" in response
