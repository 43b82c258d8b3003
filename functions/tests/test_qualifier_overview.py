"""The function overview of a version or alias page shows that version's own settings."""

from __future__ import annotations

import textwrap

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.tests.factories import make_function, signed_in_client
from functions.alias_services import function_alias_create
from functions.models import Function, FunctionVersion
from functions.services import (
    function_deploy_code,
    function_update_configuration,
    function_version_publish,
)

pytestmark = pytest.mark.django_db


def _code(answer: int) -> dict[str, str]:
    source = f"""
        def handle(event, context):
            return {answer}
    """
    return {"app.py": textwrap.dedent(source)}


@pytest.fixture
def function(user: User) -> Function:
    """Version 1 (alias "live") and a $LATEST whose code and settings all moved on since."""
    function = make_function(user, name="orders")
    function = function_deploy_code(function=function, files=_code(1))
    function = function_update_configuration(
        function=function, handler="app.handle", memory_size=256, description="unused"
    )
    function_version_publish(function=function, description="first release")
    function = function_deploy_code(function=function, files=_code(2))
    function = function_update_configuration(
        function=function, handler="app.other", memory_size=1024, description="work in progress"
    )
    function_alias_create(function=function, name="live", function_version="1")
    return function


def overview(client: Client, function: Function, **params: str) -> str:
    response = client.get(reverse("functions:detail", args=[function.pk]), params)
    assert response.status_code == 200
    body = response.content.decode()
    return body.split('id="overview-heading"', 1)[1].split('<nav class="tabs"', 1)[0]


@pytest.mark.parametrize("qualifier", ["1", "live"])
def test_overview_shows_the_version_own_settings(user, function, qualifier):
    version = FunctionVersion.objects.get(function=function, version=1)
    assert version.code_sha256 != function.code_sha256

    shown = overview(signed_in_client(user), function, tab="code", qualifier=qualifier)

    assert "first release" in shown
    assert "app.handle" in shown
    assert "256 MB" in shown
    assert version.code_sha256 in shown
    for latest_only in ("work in progress", "app.other", "1024 MB", function.code_sha256):
        assert latest_only not in shown


def test_overview_of_latest_shows_the_function_settings(user, function):
    shown = overview(signed_in_client(user), function, tab="code")

    assert "work in progress" in shown
    assert "app.other" in shown
    assert "1024 MB" in shown
    assert function.code_sha256 in shown
    assert "first release" not in shown


def test_configuration_tab_of_a_version_shows_its_own_values(user, function):
    response = signed_in_client(user).get(
        reverse("functions:detail", args=[function.pk]),
        {"tab": "configuration", "qualifier": "live"},
    )
    tab = response.content.decode().split('id="tab-configuration"', 1)[1]

    assert "first release" in tab
    assert "256 MB" in tab
    assert "work in progress" not in tab
    assert "1024 MB" not in tab
