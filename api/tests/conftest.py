"""Fixtures for driving a live Stratus through boto3, botocore and the AWS CLI."""

from __future__ import annotations

import io
import textwrap
import zipfile
from typing import Any

import boto3
import pytest
from botocore.config import Config
from django.contrib.auth.models import User

from api.services import NewAccessKey, access_key_create

REGION = "us-east-1"

HELLO = """
    import json

    print("Loading function")


    def lambda_handler(event, context):
        print("value1 = " + str(event.get("key1")))
        return {"echo": event.get("key1"), "function": context.function_name}
"""


def zip_of(code: str, *, filename: str = "lambda_function.py") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(filename, textwrap.dedent(code))
    return buffer.getvalue()


def lambda_client(endpoint_url: str, key: NewAccessKey, **config: Any) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=key.access_key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


@pytest.fixture
def access_key(user: User) -> NewAccessKey:
    return access_key_create(user=user)


@pytest.fixture
def lambda_api(live_server: Any, access_key: NewAccessKey) -> Any:
    """A boto3 Lambda client for the user's key, without retries."""
    return lambda_client(live_server.url, access_key)


@pytest.fixture
def account_id(user: User) -> str:
    from console.selectors import account_for_user

    return account_for_user(user).account_id


@pytest.fixture
def role(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/lambda-role"


@pytest.fixture
def deploy(lambda_api: Any, role: str) -> Any:
    """Create a Python function through the API: deploy(name, code=HELLO, **parameters)."""

    def deploy(name: str, code: str = HELLO, **extra: Any) -> dict[str, Any]:
        return dict(
            lambda_api.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role,
                Handler="lambda_function.lambda_handler",
                Code={"ZipFile": zip_of(code)},
                **extra,
            )
        )

    return deploy
