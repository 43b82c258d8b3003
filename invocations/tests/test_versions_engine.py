"""Invoking a published version: its own code and configuration, whatever $LATEST became."""

from __future__ import annotations

import json
import textwrap

import pytest

from functions.services import (
    function_deploy_code,
    function_update_configuration,
    function_version_publish,
)
from invocations.errors import VersionNotFound
from invocations.models import Invocation
from invocations.services import invocation_submit, invocation_wait
from invocations.tests.helpers import invoke, make_function
from monitoring.models import MetricDatapoint
from monitoring.selectors import log_messages_for_invocation

pytestmark = pytest.mark.django_db

ANSWERS = """
    import os

    def lambda_handler(event, context):
        return {{
            "answer": {answer},
            "version": context.function_version,
            "arn": context.invoked_function_arn,
            "stage": os.environ.get("STAGE"),
            "memory": context.memory_limit_in_mb,
        }}
"""


def code(answer: int) -> dict[str, str]:
    return {"lambda_function.py": textwrap.dedent(ANSWERS.format(answer=answer))}


def invoke_version(function, qualifier: str) -> Invocation:
    return invocation_wait(
        invocation=invocation_submit(function=function, payload="{}", qualifier=qualifier)
    )


def test_a_version_runs_its_own_code_after_latest_changed(user):
    function = make_function(user, ANSWERS.format(answer=1), name="versioned")
    function = function_update_configuration(function=function, environment={"STAGE": "one"})
    function_version_publish(function=function)
    function = function_deploy_code(function=function, files=code(2))
    function = function_update_configuration(
        function=function, environment={"STAGE": "two"}, memory_size=256
    )

    pinned = invoke_version(function, "1")
    latest = invoke(function)

    assert json.loads(pinned.response)["answer"] == 1
    assert json.loads(pinned.response)["version"] == "1"
    assert json.loads(pinned.response)["arn"].endswith(":function:versioned:1")
    assert json.loads(pinned.response)["stage"] == "one"
    assert json.loads(pinned.response)["memory"] == "128"
    assert json.loads(latest.response)["answer"] == 2
    assert json.loads(latest.response)["version"] == "$LATEST"
    assert json.loads(latest.response)["stage"] == "two"
    record = Invocation.objects.get(pk=pinned.request_id)
    assert (record.qualifier, record.executed_version) == ("1", "1")
    assert record.memory_size == 128
    assert record.code_sha256 != function.code_sha256


def test_the_log_lines_and_stream_name_show_the_version(user):
    function = make_function(user, ANSWERS.format(answer=1), name="logged")
    function_version_publish(function=function)

    invocation = invoke_version(function, "1")

    lines = log_messages_for_invocation(request_id=invocation.request_id)
    assert f"START RequestId: {invocation.request_id} Version: 1" in lines
    assert "[1]" in invocation.log_stream_name


def test_a_version_is_measured_by_resource_and_executed_version(user):
    function = make_function(user, ANSWERS.format(answer=1), name="measured")
    function_version_publish(function=function)

    invoke_version(function, "1")
    invoke(function)

    def invocations(dimension: str, value: str) -> float:
        point = MetricDatapoint.objects.get(
            metric_name="Invocations", dimension_name=dimension, dimension_value=value
        )
        return point.sum

    assert invocations("FunctionName", "measured") == 2
    assert invocations("Resource", "measured:1") == 1
    assert invocations("ExecutedVersion", "measured:1") == 1
    assert not MetricDatapoint.objects.filter(dimension_value="measured:$LATEST").exists()


def test_an_unknown_version_is_refused_before_anything_is_recorded(user):
    function = make_function(user, ANSWERS.format(answer=1), name="unknown")

    with pytest.raises(VersionNotFound, match="has no version 3"):
        invocation_submit(function=function, payload="{}", qualifier="3")
    with pytest.raises(VersionNotFound):
        invocation_submit(function=function, payload="{}", qualifier="live")

    assert not Invocation.objects.exists()
