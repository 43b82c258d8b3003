"""Concurrent UpdateFunctionCode calls never leave a function half-updated: each call ends
200 or with a clear 409/412, and the function points at one of the uploaded packages,
stored whole."""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from api.services import NewAccessKey
from api.tests.conftest import lambda_client, zip_of
from console.tests.factories import make_function
from functions.models import CodeArtifact, Function

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def package(number: int) -> bytes:
    return zip_of(f"def lambda_handler(event, context):\n    return {number}\n")


def code_sha256(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def update(client: Any, name: str, zip_bytes: bytes, **extra: Any) -> str:
    try:
        client.update_function_code(FunctionName=name, ZipFile=zip_bytes, **extra)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "OK"


def assert_intact(function: Function, uploaded: set[str]) -> None:
    function.refresh_from_db()
    assert function.code_sha256 in uploaded
    artifact = CodeArtifact.objects.get(pk=function.code_id)
    stored = bytes(artifact.zip_bytes)
    assert code_sha256(stored) == function.code_sha256
    assert function.code_size == artifact.size == len(stored)


def test_concurrent_updates_end_with_one_of_the_packages(live_server, user, access_key):
    function = make_function(user, "busy")
    packages = [package(number) for number in range(THREADS * 2)]
    clients = [lambda_client(live_server.url, access_key) for _ in range(THREADS)]

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(
            pool.map(
                lambda pair: update(clients[pair[0] % THREADS], "busy", pair[1]),
                enumerate(packages),
            )
        )

    assert set(outcomes) <= {"OK", "ResourceConflictException", "PreconditionFailedException"}
    assert outcomes.count("OK") >= 1
    assert_intact(function, {code_sha256(zip_bytes) for zip_bytes in packages})


def test_concurrent_updates_from_one_revision_let_exactly_one_through(
    live_server, user, access_key: NewAccessKey
):
    function = make_function(user, "busy")
    revision = str(function.revision_id)
    packages = [package(number) for number in range(THREADS)]
    clients = [lambda_client(live_server.url, access_key) for _ in range(THREADS)]

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(
            pool.map(
                lambda pair: update(clients[pair[0]], "busy", pair[1], RevisionId=revision),
                enumerate(packages),
            )
        )

    assert sorted(outcomes) == ["OK"] + ["PreconditionFailedException"] * (THREADS - 1)
    assert_intact(function, {code_sha256(zip_bytes) for zip_bytes in packages})


def test_functions_swapping_shared_packages_stay_intact(live_server, user, access_key):
    """Two functions trade the same few packages back and forth, so a package one update
    leaves unused may be the one another update is about to use."""
    functions = [make_function(user, "left"), make_function(user, "right")]
    packages = [package(number) for number in range(3)]
    clients = [lambda_client(live_server.url, access_key) for _ in range(THREADS)]
    work = [
        (functions[index % 2].name, packages[index % 3], clients[index % THREADS])
        for index in range(THREADS * 3)
    ]

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda job: update(job[2], job[0], job[1]), work))

    assert set(outcomes) <= {"OK", "ResourceConflictException"}
    uploaded = {code_sha256(zip_bytes) for zip_bytes in packages}
    for function in functions:
        assert_intact(function, uploaded)
