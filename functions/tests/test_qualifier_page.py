"""The function page switched to a published version or an alias: read-only Code and
Configuration, Test invoking the qualifier, Monitor reading its Resource dimension."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.selectors import account_for_user
from console.tests.factories import make_function, make_user, signed_in_client
from functions.alias_services import function_alias_create
from functions.models import Function
from functions.services import (
    function_deploy_code,
    function_update_configuration,
    function_version_publish,
)
from invocations.models import Invocation
from monitoring.models import MetricDatapoint

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
READ_ONLY_NOTICE = "This is a published version. Its code and settings cannot be changed."


def handler_code(answer: int) -> dict[str, str]:
    source = f"""
        def lambda_handler(event, context):
            return {{"answer": {answer}, "version": context.function_version}}
    """
    return {"lambda_function.py": textwrap.dedent(source)}


@pytest.fixture
def function(user: User) -> Function:
    """Version 1 answers 1 with 256 MB; $LATEST has moved on to answer 2 with 512 MB; the
    alias "live" points at version 1."""
    function = make_function(user, name="orders")
    function = function_deploy_code(function=function, files=handler_code(1))
    function = function_update_configuration(function=function, memory_size=256)
    function_version_publish(function=function, description="first")
    function = function_deploy_code(function=function, files=handler_code(2))
    function = function_update_configuration(function=function, memory_size=512)
    function_alias_create(function=function, name="live", function_version="1")
    return function


@pytest.fixture
def client_for(user: User) -> Client:
    return signed_in_client(user)


def page(client: Client, function: Function, **params: str) -> str:
    response = client.get(reverse("functions:detail", args=[function.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def arn(function: Function, qualifier: str) -> str:
    account_id = account_for_user(function.owner).account_id
    return f"arn:aws:lambda:us-east-1:{account_id}:function:{function.name}:{qualifier}"


@pytest.mark.parametrize("qualifier", ["1", "live"])
def test_code_tab_shows_the_version_read_only(client_for, function, qualifier):
    body = page(client_for, function, tab="code", qualifier=qualifier)

    assert READ_ONLY_NOTICE in body
    assert "data-read-only" in body
    assert "data-code-deploy" not in body
    assert "code-upload-modal" not in body
    assert "runtime-settings-modal" not in body
    assert '\\"answer\\": 1' in body
    assert '\\"answer\\": 2' not in body
    assert f'data-copy="{arn(function, qualifier)}"' in body
    assert f"orders:{qualifier}" in body


def test_code_tab_of_latest_stays_editable(client_for, function):
    body = page(client_for, function, tab="code")

    assert READ_ONLY_NOTICE not in body
    assert "data-code-deploy" in body
    assert '\\"answer\\": 2' in body
    assert "Publish new version" in body
    assert "delete-function-modal" in body


@pytest.mark.parametrize("qualifier", ["1", "live"])
def test_configuration_tab_shows_the_version_values_without_edit(client_for, function, qualifier):
    body = page(client_for, function, tab="configuration", qualifier=qualifier)

    assert READ_ONLY_NOTICE in body
    assert "<dt>Memory</dt><dd>256 MB</dd>" in body
    assert "<dt>Memory</dt><dd>512 MB</dd>" not in body
    assert "edit=1" not in body
    assert reverse("functions:configuration_general", args=[function.pk]) not in body


def test_editing_is_refused_under_a_qualifier(client_for, function):
    body = page(client_for, function, tab="configuration", qualifier="1", edit="1")

    assert 'name="memory_size"' not in body


def test_alias_pages_show_the_routing(client_for, function):
    body = page(client_for, function, tab="code", qualifier="live")

    assert "Alias <strong>live</strong> routes to" in body
    assert "version 1" in body


def test_version_pages_have_no_latest_only_actions(client_for, function):
    body = page(client_for, function, tab="versions", qualifier="1")

    assert "Publish new version" not in body.split('id="versions-heading"')[0]
    assert "Create alias" not in body.split('id="overview-heading"')[0]
    assert "delete-function-modal" not in body


def test_selector_lists_every_qualifier_and_keeps_the_tab(client_for, function):
    body = page(client_for, function, tab="monitor", qualifier="live")

    detail = reverse("functions:detail", args=[function.pk])
    assert f'href="{detail}?tab=monitor"' in body
    assert f'href="{detail}?tab=monitor&amp;qualifier=1"' in body
    assert f'href="{detail}?tab=monitor&amp;qualifier=live"' in body
    assert "Alias: live" in body
    assert "Version 1" in body


def test_versions_and_aliases_rows_link_to_their_pages(client_for, function):
    detail = reverse("functions:detail", args=[function.pk])

    assert f"{detail}?tab=code&amp;qualifier=1" in page(client_for, function, tab="versions")
    assert f"{detail}?tab=code&amp;qualifier=live" in page(client_for, function, tab="aliases")


def test_actions_open_the_publish_and_create_dialogs(client_for, function):
    versions = page(client_for, function, tab="versions", publish="1")
    aliases = page(client_for, function, tab="aliases", create="1")

    assert (
        'id="version-publish-modal" aria-labelledby="version-publish-title" data-open-on-load'
        in (versions)
    )
    assert 'id="alias-create-modal" aria-labelledby="alias-create-title" data-open-on-load' in (
        aliases
    )


@pytest.mark.parametrize("qualifier", ["7", "missing", "$LATEST:1"])
def test_unknown_qualifiers_are_not_found(client_for, function, qualifier):
    response = client_for.get(
        reverse("functions:detail", args=[function.pk]), {"qualifier": qualifier}
    )

    assert response.status_code == 404


def test_other_users_cannot_open_a_version(function):
    stranger = signed_in_client(make_user("stranger"))

    response = stranger.get(reverse("functions:detail", args=[function.pk]), {"qualifier": "1"})

    assert response.status_code == 404


@pytest.mark.parametrize(("qualifier", "answer"), [("1", 1), ("live", 1), ("$LATEST", 2)])
def test_test_button_invokes_the_qualifier(client_for, function, qualifier, answer):
    tab = page(client_for, function, tab="test", qualifier=qualifier)
    assert f'id="test-qualifier" name="qualifier" value="{qualifier}"' in tab

    response = client_for.post(
        reverse("invocations:test_run", args=[function.pk]),
        {"payload": "{}", "qualifier": qualifier},
        **HTMX,
    )

    body = response.content.decode()
    invocation = Invocation.objects.get(function=function)
    executed = "$LATEST" if qualifier == "$LATEST" else "1"
    assert invocation.qualifier == qualifier
    assert invocation.executed_version == executed
    assert f"&quot;answer&quot;: {answer}" in body
    assert "Executed version" in body
    assert f"<div><dt>Executed version</dt><dd>{executed}</dd></div>" in body


def test_test_post_with_an_unknown_qualifier_is_not_found(client_for, function):
    response = client_for.post(
        reverse("invocations:test_run", args=[function.pk]),
        {"payload": "{}", "qualifier": "nope"},
        **HTMX,
    )

    assert response.status_code == 404
    assert not Invocation.objects.exists()


def datapoint(function: Function, dimension: str, value: str, total: float) -> None:
    MetricDatapoint.objects.create(
        owner=function.owner,
        metric_name="Invocations",
        dimension_name=dimension,
        dimension_value=value,
        period_start=timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5),
        sum=total,
        sample_count=total,
        minimum=1,
        maximum=1,
    )


def invocation_total(payload: dict[str, Any]) -> float:
    chart = next(chart for chart in payload["charts"] if chart["slug"] == "invocations")
    return sum(value or 0 for series in chart["datasets"] for value in series["data"])


@pytest.mark.parametrize(
    ("qualifier", "expected"), [("", 7.0), ("1", 3.0), ("live", 2.0), ("$LATEST", 7.0)]
)
def test_metrics_json_reads_the_resource_dimension(client_for, function, qualifier, expected):
    datapoint(function, "FunctionName", "orders", 7)
    datapoint(function, "Resource", "orders:1", 3)
    datapoint(function, "Resource", "orders:live", 2)
    params = {"range": "1h", **({"qualifier": qualifier} if qualifier else {})}

    response = client_for.get(reverse("monitoring:metrics", args=[function.pk]), params)

    assert response.status_code == 200
    assert invocation_total(response.json()) == expected


def test_metrics_json_for_an_unknown_qualifier_is_not_found(client_for, function):
    response = client_for.get(reverse("monitoring:metrics", args=[function.pk]), {"qualifier": "2"})

    assert response.status_code == 404


def record(function: Function, *, qualifier: str, executed: str) -> Invocation:
    return Invocation.objects.create(
        function=function,
        function_name=function.name,
        qualifier=qualifier,
        executed_version=executed,
        status="succeeded",
        payload="{}",
        code_sha256=function.code_sha256,
        memory_size=128,
        timeout=3,
    )


def test_recent_invocations_are_filtered_by_qualifier(client_for, function):
    latest = record(function, qualifier="$LATEST", executed="$LATEST")
    version = record(function, qualifier="1", executed="1")
    alias = record(function, qualifier="live", executed="1")
    url = reverse("monitoring:recent-invocations", args=[function.pk])

    everything = client_for.get(url, {"range": "1h"}).content.decode()
    only_alias = client_for.get(url, {"range": "1h", "qualifier": "live"}).content.decode()

    assert all(str(i.request_id) in everything for i in (latest, version, alias))
    assert "Executed version" in everything
    assert str(alias.request_id) in only_alias
    assert str(version.request_id) not in only_alias
    assert str(latest.request_id) not in only_alias


def test_monitor_tab_carries_the_qualifier_to_its_data_urls(client_for, function):
    body = page(client_for, function, tab="monitor", qualifier="live", view="logs")

    metrics = reverse("monitoring:metrics", args=[function.pk])
    assert f'data-metrics-url="{metrics}?qualifier=live"' in body
    assert '<input type="hidden" name="qualifier" value="live">' in body
