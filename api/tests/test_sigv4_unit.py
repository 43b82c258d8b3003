"""The verifier against requests botocore signs, without HTTP in between."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from unittest import mock
from urllib.parse import unquote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from api import sigv4
from api.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def botocore_signed(method: str, url: str, body: bytes = b"", **headers: str) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(Credentials(KEY_ID, SECRET), "lambda", "us-east-1").add_auth(request)
    return request


def as_received(request: AWSRequest, *, keep_raw_path: bool) -> sigv4.SignedRequest:
    """The request as a WSGI server hands it over: the path decoded, the query raw."""
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = {name.lower(): value for name, value in prepared.headers.items()}
    headers.setdefault("host", parts.netloc)
    return sigv4.SignedRequest(
        method=prepared.method,
        raw_path=parts.path if keep_raw_path else None,
        decoded_path=unquote(parts.path),
        query_string=parts.query,
        header=lambda name: headers.get(name.lower()),
        body=prepared.body or b"",
    )


def check(request: sigv4.SignedRequest, *, secret: str = SECRET) -> None:
    authorization = sigv4.parse_authorization(request)
    sigv4.verify(
        request, authorization, secret_key=secret, region="us-east-1", service="lambda", now=NOW
    )


@pytest.mark.parametrize("keep_raw_path", [True, False])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/2015-03-31/functions",
        "http://127.0.0.1:8000/2015-03-31/functions?MaxItems=2&Marker=abc%3D%3D",
        "http://127.0.0.1:8000/2015-03-31/functions/my-fn%3A%24LATEST/invocations",
        "http://127.0.0.1:8000/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012"
        "%3Afunction%3Afn?tagKeys=b&tagKeys=a%20b&tagKeys=%C3%A9t%C3%A9",
        "http://localhost/2015-03-31/functions/fn",
    ],
)
def test_botocore_signatures_verify(url, keep_raw_path):
    request = botocore_signed("GET", url)

    check(as_received(request, keep_raw_path=keep_raw_path))


def test_a_signed_body_verifies_and_a_changed_one_does_not():
    request = botocore_signed(
        "PUT", "http://h/2015-03-31/functions/fn/code", b'{"ZipFile": "UEs="}'
    )
    received = as_received(request, keep_raw_path=True)
    check(received)

    tampered = dataclasses.replace(received, body=b'{"ZipFile": "UEt="}')
    with pytest.raises(InvalidSignatureException):
        check(tampered)


def test_the_secret_matters():
    received = as_received(
        botocore_signed("GET", "http://h/2015-03-31/functions"), keep_raw_path=True
    )

    with pytest.raises(InvalidSignatureException):
        check(received, secret=SECRET[:-1] + "Z")


def test_a_scope_date_other_than_the_request_date_is_refused():
    request = botocore_signed("GET", "http://h/2015-03-31/functions")
    request.headers.replace_header(
        "Authorization", request.headers["Authorization"].replace("/20261129/", "/20261128/")
    )

    with pytest.raises(InvalidSignatureException, match="Date in Credential scope"):
        check(as_received(request, keep_raw_path=True))


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        ("", MissingAuthenticationTokenException),
        ("Bearer token", IncompleteSignatureException),
        ("AWS4-HMAC-SHA512 Credential=a/b/c/d/e", IncompleteSignatureException),
        ("AWS4-HMAC-SHA256 Credential", IncompleteSignatureException),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20261129/us-east-1/lambda/aws4_request, "
            "SignedHeaders=x-amz-date, Signature=00",
            IncompleteSignatureException,
        ),
    ],
)
def test_authorization_headers_that_cannot_be_verified(authorization, error):
    headers = {"authorization": authorization, "x-amz-date": "20261129T120000Z"}
    request = sigv4.SignedRequest(
        method="GET",
        raw_path=None,
        decoded_path="/",
        query_string="",
        header=lambda name: headers.get(name.lower()),
        body=b"",
    )

    with pytest.raises(error):
        sigv4.parse_authorization(request)


def test_the_terminator_is_checked():
    request = botocore_signed("GET", "http://h/2015-03-31/functions")
    request.headers.replace_header(
        "Authorization", request.headers["Authorization"].replace("aws4_request", "aws5_request")
    )

    with pytest.raises(InvalidSignatureException, match="valid terminator"):
        check(as_received(request, keep_raw_path=True))
