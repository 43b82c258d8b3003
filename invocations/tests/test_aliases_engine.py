"""Invoking an alias: the version it points to runs (picked by weight for a weighted
alias), and the record, log and metrics say which."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from functions.alias_services import Routing, function_alias_create, function_alias_update
from functions.services import function_deploy_code, function_version_publish
from invocations.errors import VersionNotFound
from invocations.models import Invocation
from invocations.services import invocation_submit, invocation_wait
from invocations.tests.helpers import make_function
from monitoring.models import MetricDatapoint
from monitoring.selectors import log_messages_for_invocation

pytestmark = pytest.mark.django_db

ANSWERS = """
    def lambda_handler(event, context):
        return {{
            "answer": {answer},
            "version": context.function_version,
            "arn": context.invoked_function_arn,
        }}
"""


def invocations(dimension: str, value: str) -> float:
    """The Invocations metric summed over every period the test ran in."""
    points = MetricDatapoint.objects.filter(
        metric_name="Invocations", dimension_name=dimension, dimension_value=value
    )
    return sum(point.sum for point in points)


def code(answer: int) -> dict[str, str]:
    return {"lambda_function.py": textwrap.dedent(ANSWERS.format(answer=answer))}


def two_versions(user, name: str):
    function = make_function(user, ANSWERS.format(answer=1), name=name)
    function_version_publish(function=function)
    function = function_deploy_code(function=function, files=code(2))
    function_version_publish(function=function)
    return function_deploy_code(function=function, files=code(3))


def invoke_as(function, qualifier: str) -> Invocation:
    return invocation_wait(
        invocation=invocation_submit(function=function, payload="{}", qualifier=qualifier)
    )


def test_an_alias_runs_the_version_it_points_to(user):
    function = two_versions(user, "aliased")
    function_alias_create(function=function, name="live", function_version="1")

    invocation = invoke_as(function, "live")

    answer = json.loads(invocation.response)
    assert answer["answer"] == 1
    assert answer["version"] == "1"
    assert answer["arn"].endswith(":function:aliased:live")
    record = Invocation.objects.get(pk=invocation.request_id)
    assert (record.qualifier, record.executed_version) == ("live", "1")
    lines = log_messages_for_invocation(request_id=invocation.request_id)
    assert f"START RequestId: {invocation.request_id} Version: 1" in lines


def test_moving_an_alias_changes_what_runs(user):
    function = two_versions(user, "moved")
    alias = function_alias_create(function=function, name="live", function_version="1")

    function_alias_update(alias=alias, function_version="2")

    assert json.loads(invoke_as(function, "live").response)["answer"] == 2


def test_an_alias_of_latest_runs_latest(user):
    function = two_versions(user, "latest")
    function_alias_create(function=function, name="edge", function_version="$LATEST")

    invocation = invoke_as(function, "edge")

    assert json.loads(invocation.response)["answer"] == 3
    record = Invocation.objects.get(pk=invocation.request_id)
    assert (record.qualifier, record.executed_version) == ("edge", "$LATEST")


def test_an_alias_is_measured_by_resource_and_executed_version(user):
    function = two_versions(user, "measured")
    function_alias_create(function=function, name="live", function_version="2")

    invoke_as(function, "live")
    invoke_as(function, "live")

    assert invocations("FunctionName", "measured") == 2
    assert invocations("Resource", "measured:live") == 2
    assert invocations("ExecutedVersion", "measured:2") == 2
    assert not MetricDatapoint.objects.filter(dimension_value="measured:1").exists()


def test_an_unknown_alias_is_refused(user):
    function = two_versions(user, "unknown")

    with pytest.raises(VersionNotFound, match="has no version nope"):
        invocation_submit(function=function, payload="{}", qualifier="nope")

    assert not Invocation.objects.exists()


def test_a_weighted_alias_splits_invocations_by_its_weights(user):
    function = two_versions(user, "weighted")
    function_alias_create(
        function=function,
        name="canary",
        function_version="1",
        routing=Routing(additional_version="2", weight=0.3),
    )
    runs = 400

    answers = [json.loads(invoke_as(function, "canary").response)["answer"] for _ in range(runs)]

    # The count of version 2 is binomial(400, 0.3): mean 120, standard deviation ~9.2.
    # Four standard deviations make a false failure about a 1-in-15,000 event.
    expected = runs * 0.3
    spread = 4 * math.sqrt(runs * 0.3 * 0.7)
    assert set(answers) == {1, 2}
    assert abs(answers.count(2) - expected) <= spread
    executed = Invocation.objects.filter(qualifier="canary").values_list(
        "executed_version", flat=True
    )
    assert sorted(set(executed)) == ["1", "2"]
    assert list(executed).count("2") == answers.count(2)
    assert invocations("ExecutedVersion", "weighted:1") == runs - answers.count(2)
    assert invocations("ExecutedVersion", "weighted:2") == answers.count(2)
    assert invocations("Resource", "weighted:canary") == runs
