"""The invocation engine end to end in-process: Runtime API, awslambdaric, process sandbox,
environment pool, recorder."""

from __future__ import annotations

import json
import re

import pytest
from django.db.models import Max, Min, Sum

from invocations.errors import InvalidRequestContent, RequestTooLarge
from invocations.models import Invocation
from invocations.services import invocation_submit
from invocations.tests.helpers import invoke, make_function
from monitoring.models import LogEvent, LogStream, MetricDatapoint
from monitoring.selectors import log_messages_for_invocation

pytestmark = pytest.mark.django_db

HELLO = """
    print("Loading function")

    def lambda_handler(event, context):
        print("value1 = " + event["key1"])
        return event["key1"]
"""
REPORT_RE = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: \d+\.\d\d ms\t"
    r"Billed Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: [1-9]\d* MB\t"
    r"(Init Duration: \d+\.\d\d ms\t)?$"
)


def test_success_returns_the_result_and_lambdas_log_lines(user):
    function = make_function(user, HELLO)

    invocation = invoke(function, '{"key1": "hello, world!"}')

    assert invocation.status == "succeeded"
    assert json.loads(invocation.response) == "hello, world!"
    lines = log_messages_for_invocation(request_id=invocation.request_id)
    request_id = str(invocation.request_id)
    assert lines[0] == "Loading function"
    assert lines[1] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[2] == "value1 = hello, world!"
    assert lines[3] == f"END RequestId: {request_id}"
    report = REPORT_RE.match(lines[4])
    assert report and report["id"] == request_id and "Init Duration" in lines[4]


def test_warm_environment_is_reused_and_init_duration_only_on_cold_start(user):
    function = make_function(user, HELLO)

    first = invoke(function, '{"key1": "a"}')
    second = invoke(function, '{"key1": "b"}')

    assert first.init_duration_ms is not None and first.init_duration_ms > 0
    assert second.init_duration_ms is None
    assert first.log_stream_name == second.log_stream_name
    second_lines = log_messages_for_invocation(request_id=second.request_id)
    assert "Loading function" not in second_lines
    assert "Init Duration" not in second_lines[-1]
    assert second.duration_ms is not None
    assert second.billed_duration_ms == max(1, -(-second.duration_ms // 1))


def test_log_group_and_stream_are_named_like_lambdas(user):
    function = make_function(user, HELLO, name="hello-world-python")

    invocation = invoke(function, '{"key1": "x"}')

    stream = LogStream.objects.select_related("group").get(name=invocation.log_stream_name)
    assert stream.group.name == "/aws/lambda/hello-world-python"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", stream.name)
    assert LogEvent.objects.filter(stream=stream, request_id=invocation.request_id).count() == 5


def test_function_error_is_reported_with_lambdas_error_document(user):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            raise KeyError("action")
        """,
    )

    invocation = invoke(function)

    assert invocation.status == "failed"
    document = json.loads(invocation.response)
    assert document["errorType"] == "KeyError"
    assert document["errorMessage"] == "'action'"
    assert document["requestId"] == str(invocation.request_id)
    assert any("lambda_function.py" in frame for frame in document["stackTrace"])
    lines = log_messages_for_invocation(request_id=invocation.request_id)
    assert any(line.startswith("[ERROR] KeyError: 'action'") for line in lines)
    # A function error leaves the environment usable: the next call is warm.
    assert invoke(function).init_duration_ms is None


@pytest.mark.parametrize(
    ("code", "handler", "error_type", "message"),
    [
        ("import not_a_module\n", "lambda_function.lambda_handler", "Runtime.ImportModuleError",
         "Unable to import module 'lambda_function': No module named 'not_a_module'"),
        ("def handler(e, c):\n    return 1\n", "lambda_function.lambda_handler",
         "Runtime.HandlerNotFound", "Handler 'lambda_handler' missing on module 'lambda_function'"),
        ("def lambda_handler(e, c)\n    return 1\n", "lambda_function.lambda_handler",
         "Runtime.UserCodeSyntaxError", "Syntax error in module 'lambda_function'"),
        ("x = 1\n", "missing_module.lambda_handler", "Runtime.ImportModuleError",
         "Unable to import module 'missing_module'"),
    ],
)  # fmt: skip
def test_handler_loading_errors_are_lambdas_own(user, code, handler, error_type, message):
    function = make_function(user, code, handler=handler)

    invocation = invoke(function)

    assert invocation.status == "failed"
    assert invocation.error_type == error_type
    document = json.loads(invocation.response)
    assert document["errorType"] == error_type
    assert document["errorMessage"].startswith(message)
    lines = log_messages_for_invocation(request_id=invocation.request_id)
    assert any(
        line.startswith("INIT_REPORT Init Duration:") and error_type in line for line in lines
    )


def test_timeout_kills_the_environment_and_the_next_invocation_works(user):
    function = make_function(
        user,
        """
        import time

        def lambda_handler(event, context):
            if event.get("sleep"):
                time.sleep(30)
            return "done"
        """,
        timeout=1,
    )
    warm = invoke(function)

    timed_out = invoke(function, '{"sleep": true}')

    assert timed_out.status == "failed"
    assert timed_out.error_type == "Sandbox.Timedout"
    document = json.loads(timed_out.response)
    assert re.fullmatch(
        rf"RequestId: {timed_out.request_id} Error: Task timed out after 1\.0\d seconds",
        document["errorMessage"],
    )
    assert timed_out.duration_ms is not None
    assert 1000 <= timed_out.duration_ms < 1500
    lines = log_messages_for_invocation(request_id=timed_out.request_id)
    assert any(re.search(r"Task timed out after 1\.0\d seconds$", line) for line in lines)
    assert "Status: timeout" in lines[-1]
    after = invoke(function)
    assert after.status == "succeeded"
    assert after.init_duration_ms is not None, "the timed-out environment must not be reused"
    assert after.log_stream_name != warm.log_stream_name


def test_runtime_exit_is_reported_as_exit_error(user):
    function = make_function(
        user,
        """
        import os

        def lambda_handler(event, context):
            if event.get("crash"):
                os._exit(3)
            return "ok"
        """,
    )

    crashed = invoke(function, '{"crash": true}')

    assert crashed.error_type == "Runtime.ExitError"
    assert json.loads(crashed.response)["errorMessage"] == (
        f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 3"
    )
    assert invoke(function).status == "succeeded"


def test_response_over_six_megabytes_is_refused(user):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            return "x" * (6 * 1024 * 1024 + 10)
        """,
    )

    invocation = invoke(function)

    assert invocation.error_type == "Function.ResponseSizeTooLarge"
    assert (
        "exceeded maximum allowed payload size" in json.loads(invocation.response)["errorMessage"]
    )


def test_log_output_is_capped_with_a_visible_marker(user, settings):
    settings.STRATUS_MAX_LOG_BYTES = 10_000
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            for i in range(5000):
                print("line", i)
            return "ok"
        """,
    )

    invocation = invoke(function)

    lines = log_messages_for_invocation(request_id=invocation.request_id)
    assert invocation.status == "succeeded"
    assert any("Log output truncated" in line for line in lines)
    assert sum(len(line) + 1 for line in lines[:-3]) < 12_000
    assert lines[-1].startswith("REPORT RequestId:")


def test_context_and_reserved_environment_variables(user):
    function = make_function(
        user,
        """
        import os

        def lambda_handler(event, context):
            names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                     "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_GROUP_NAME",
                     "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "_HANDLER", "GREETING",
                     "AWS_EXECUTION_ENV", "DATABASE_URL", "CELERY_BROKER_URL"]
            return {
                "env": {name: os.environ.get(name) for name in names},
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "arn": context.invoked_function_arn,
                "request_id": context.aws_request_id,
                "remaining": context.get_remaining_time_in_millis(),
                "log_group": context.log_group_name,
            }
        """,
        name="ctx",
        memory_size=256,
        timeout=5,
        environment={"GREETING": "hi"},
    )

    invocation = invoke(function)

    result = json.loads(invocation.response)
    env = result["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "ctx"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/ctx"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == invocation.log_stream_name
    assert env["_HANDLER"] == "lambda_function.lambda_handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["GREETING"] == "hi"
    assert env["DATABASE_URL"] is None and env["CELERY_BROKER_URL"] is None
    assert result["function_name"] == "ctx"
    assert result["memory_limit_in_mb"] == "256"
    assert re.fullmatch(r"arn:aws:lambda:us-east-1:\d{12}:function:ctx:\$LATEST", result["arn"])
    assert result["request_id"] == str(invocation.request_id)
    assert 4000 < result["remaining"] <= 5000


def test_a_deploy_reaches_only_new_environments(user):
    from functions.services import function_deploy_code

    function = make_function(user, "def lambda_handler(e, c):\n    return 'v1'\n")
    assert json.loads(invoke(function).response) == "v1"

    function = function_deploy_code(
        function=function,
        files={"lambda_function.py": "def lambda_handler(e, c):\n    return 'v2'\n"},
    )
    invocation = invoke(function)

    assert json.loads(invocation.response) == "v2"
    assert invocation.init_duration_ms is not None


def test_metrics_are_written_per_minute(user):
    function = make_function(
        user,
        """
        def lambda_handler(event, context):
            if event.get("fail"):
                raise ValueError("no")
            return 1
        """,
        name="metered",
    )

    invoke(function)
    invoke(function)
    invoke(function, '{"fail": 1}')

    # The three may straddle a minute boundary: add up the minutes.
    points = (
        MetricDatapoint.objects.filter(dimension_name="FunctionName", dimension_value="metered")
        .values("metric_name")
        .annotate(
            total=Sum("sum"), count=Sum("sample_count"), low=Min("minimum"), high=Max("maximum")
        )
    )
    by_name = {point["metric_name"]: point for point in points}
    assert by_name["Invocations"]["total"] == 3
    assert by_name["Errors"]["total"] == 1
    assert by_name["Duration"]["count"] == 3
    assert by_name["Duration"]["low"] <= by_name["Duration"]["high"]
    assert by_name["ConcurrentExecutions"]["high"] == 1


def test_bad_payloads_are_refused_before_anything_is_recorded(user):
    function = make_function(user, HELLO)

    with pytest.raises(InvalidRequestContent, match="Could not parse request body into json"):
        invocation_submit(function=function, payload="{not json")
    with pytest.raises(RequestTooLarge, match="Request must be smaller than 6291456 bytes"):
        invocation_submit(function=function, payload='"' + "x" * (6 * 1024 * 1024) + '"')

    assert Invocation.objects.count() == 0


def test_a_second_delivery_of_the_same_message_does_not_run_it_again(user):
    from invocations.services import invocation_execute

    function = make_function(user, HELLO)
    invocation = invoke(function, '{"key1": "once"}')

    again = invocation_execute(request_id=str(invocation.request_id))

    assert again == "succeeded"
    assert (
        LogEvent.objects.filter(
            request_id=invocation.request_id, message__startswith="START"
        ).count()
        == 1
    )


def test_environments_left_by_a_dead_worker_are_removed(settings, tmp_path):
    import os
    import subprocess
    import sys

    from invocations.sandboxes.process import ProcessSandboxBackend

    settings.STRATUS_SANDBOX_DIR = tmp_path
    dead_worker = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_worker.wait()
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    (tmp_path / "abc").mkdir()
    (tmp_path / "abc" / "owner").write_text(f"{dead_worker.pid} {orphan.pid}")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "owner").write_text(f"{os.getpid()} {orphan.pid}")

    removed = ProcessSandboxBackend().remove_orphans()

    assert removed == 1
    assert orphan.wait(timeout=5) == -9
    assert not (tmp_path / "abc").exists() and (tmp_path / "mine").exists()


def test_the_sweeper_fails_a_running_invocation_whose_worker_died(user):
    from datetime import timedelta

    from django.utils import timezone

    from invocations.services import invocation_sweep

    function = make_function(user, HELLO)
    invocation = Invocation.objects.create(
        function=function,
        function_name=function.name,
        payload="{}",
        code_sha256=function.code_sha256,
        memory_size=function.memory_size,
        timeout=function.timeout,
        status="running",
        started_at=timezone.now() - timedelta(minutes=5),
    )
    still_running = Invocation.objects.create(
        function=function,
        function_name=function.name,
        payload="{}",
        code_sha256=function.code_sha256,
        memory_size=function.memory_size,
        timeout=function.timeout,
        status="running",
        started_at=timezone.now(),
    )

    swept = invocation_sweep()

    invocation.refresh_from_db()
    still_running.refresh_from_db()
    assert swept["failed"] == 1
    assert invocation.status == "failed" and invocation.error_type == "ServiceException"
    assert "stopped before it finished" in json.loads(invocation.response)["errorMessage"]
    assert still_running.status == "running"


def test_the_runtime_api_serves_only_the_admitted_address():
    import http.client

    from invocations.runtime_api import RuntimeApiServer

    api = RuntimeApiServer("127.0.0.1")
    api.admit_only("10.255.255.1")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            connection.request("GET", "/2018-06-01/runtime/invocation/next")
            connection.getresponse()
        assert api.first_poll_at is None
    finally:
        api.close()


def test_runtime_api_servers_listen_in_the_configured_port_range(settings):
    from invocations.runtime_api import RuntimeApiServer

    settings.STRATUS_RUNTIME_API_PORTS = "23000-23009"
    servers = [RuntimeApiServer("127.0.0.1") for _ in range(5)]
    try:
        ports = {server.port for server in servers}
        assert len(ports) == 5
        assert all(23000 <= port <= 23009 for port in ports)
    finally:
        for server in servers:
            server.close()


def test_a_request_the_host_has_no_room_for_is_a_throttle(user, settings):
    from invocations import environments

    settings.STRATUS_EE_MEMORY_BUDGET_MB = 100
    environments.shutdown_pool()
    try:
        function = make_function(user, HELLO, name="too-big")

        invocation = invoke(function, '{"key1": "x"}')
    finally:
        environments.shutdown_pool()

    assert invocation.status == "failed"
    assert invocation.error_type == "TooManyRequestsException"
    points = {
        p.metric_name: p.sum
        for p in MetricDatapoint.objects.filter(
            dimension_name="FunctionName", dimension_value="too-big"
        )
    }
    assert points == {"Throttles": 1}


def test_closing_a_runtime_api_endpoint_is_prompt():
    import time

    from invocations.runtime_api import RuntimeApiServer

    api = RuntimeApiServer("127.0.0.1")
    started = time.perf_counter()
    api.close()

    assert time.perf_counter() - started < 0.1
