from __future__ import annotations

import base64
import importlib.util
import json
import logging
import uuid
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from functions.blueprint_loader import (
    BLUEPRINTS_DIR,
    BlueprintError,
    blueprint_load,
    blueprints_load_all,
    blueprints_sync,
)
from functions.models import Blueprint

SLUGS = [
    "hello-world-python",
    "microservice-http-endpoint-python",
    "event-logger-python",
    "json-transform-python",
]

# Small copies of the console's test event templates, so these tests stand on their own.
TEMPLATE_EVENTS: dict[str, Any] = {
    "hello-world": {"key1": "value1", "key2": "value2", "key3": "value3"},
    "apigateway-aws-proxy": {
        "body": "eyJ0ZXN0IjoiYm9keSJ9",
        "resource": "/{proxy+}",
        "path": "/path/to/resource",
        "httpMethod": "POST",
        "isBase64Encoded": True,
        "queryStringParameters": {"foo": "bar"},
        "multiValueQueryStringParameters": {"foo": ["bar"]},
        "pathParameters": {"proxy": "/path/to/resource"},
        "stageVariables": {"baz": "qux"},
        "headers": {
            "Accept": "text/html",
            "Host": "1234567890.execute-api.us-east-1.amazonaws.com",
        },
        "multiValueHeaders": {"Accept": ["text/html"]},
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "123456",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "09/Apr/2015:12:34:56 +0000",
            "requestTimeEpoch": 1428582896000,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "Custom User Agent String"},
            "path": "/prod/path/to/resource",
            "resourcePath": "/{proxy+}",
            "httpMethod": "POST",
            "apiId": "1234567890",
            "protocol": "HTTP/1.1",
        },
    },
    "cloudwatch-scheduled-event": {
        "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "1970-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ExampleRule"],
        "detail": {},
    },
    "sqs-receive-message": {
        "Records": [
            {
                "messageId": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78",
                "receiptHandle": "MessageReceiptHandle",
                "body": "Hello from SQS!",
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1523232000000",
                    "SenderId": "123456789012",
                    "ApproximateFirstReceiveTimestamp": "1523232000001",
                },
                "messageAttributes": {},
                "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:MyQueue",
                "awsRegion": "us-east-1",
            }
        ]
    },
}


class FakeContext:
    """The attributes and method of the Python runtime's context object the blueprints use."""

    function_name = "blueprint-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:blueprint-test"
    memory_limit_in_mb = "128"
    log_group_name = "/aws/lambda/blueprint-test"
    log_stream_name = "2024/01/01/[$LATEST]0123456789abcdef"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 2950


@pytest.fixture(autouse=True)
def _keep_root_log_level() -> Any:
    # The event logger sets the root logger to INFO on import, as Lambda code does.
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def load_handler_module(slug: str) -> ModuleType:
    """Import a blueprint's handler module afresh (so module-level state starts empty)."""
    spec_data = blueprint_load(directory=BLUEPRINTS_DIR / slug)
    module_name, _, _ = spec_data.handler.rpartition(".")
    path = BLUEPRINTS_DIR / slug / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"blueprint_{slug.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(slug: str, event: Any) -> Any:
    module = load_handler_module(slug)
    return module.lambda_handler(event, FakeContext())


def write_blueprint(root: Path, slug: str, **overrides: Any) -> Path:
    directory = root / slug
    directory.mkdir(parents=True)
    manifest = {
        "title": f"Title of {slug}",
        "description": "Does a thing.",
        "runtime": "python3.11",
        "handler": "lambda_function.lambda_handler",
        "tags": ["python"],
        "test_event_template": "hello-world",
        "position": 5,
        **overrides,
    }
    (directory / "blueprint.json").write_text(json.dumps(manifest))
    (directory / "lambda_function.py").write_text("def lambda_handler(event, context):\n    pass\n")
    return directory


# --- the loader ------------------------------------------------------------------------------


def test_loader_reads_the_four_blueprints_in_gallery_order() -> None:
    specs = blueprints_load_all()

    assert [spec.slug for spec in specs] == SLUGS
    by_slug = {spec.slug: spec for spec in specs}
    assert by_slug["hello-world-python"].title == "Hello world function"
    assert {spec.test_event_template for spec in specs} == set(TEMPLATE_EVENTS)
    for spec in specs:
        assert spec.runtime == "python3.11"
        assert spec.handler == "lambda_function.lambda_handler"
        assert "lambda_function.py" in spec.files
        assert "blueprint.json" not in spec.files
        assert spec.tags and spec.description


def test_hello_world_is_the_sample_lambda_ships() -> None:
    source = blueprint_load(directory=BLUEPRINTS_DIR / "hello-world-python").files[
        "lambda_function.py"
    ]

    assert source.startswith("import json\n\nprint('Loading function')\n")
    assert "    return event['key1']  # Echo back the first key value\n" in source
    assert "    #raise Exception('Something went wrong')" in source


def test_loader_rejects_a_manifest_without_required_keys(tmp_path: Path) -> None:
    directory = write_blueprint(tmp_path, "broken")
    manifest = json.loads((directory / "blueprint.json").read_text())
    del manifest["handler"], manifest["position"]
    (directory / "blueprint.json").write_text(json.dumps(manifest))

    with pytest.raises(BlueprintError, match="lacks handler, position"):
        blueprint_load(directory=directory)


def test_loader_rejects_a_handler_whose_module_file_is_missing(tmp_path: Path) -> None:
    directory = write_blueprint(tmp_path, "no-module", handler="app.main")

    with pytest.raises(BlueprintError, match="handler module app.py is missing"):
        blueprint_load(directory=directory)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"runtime": "cobol85"}, "runtime 'cobol85'"),
        ({"handler": "lambda_function"}, "not of the form module.function"),
        ({"tags": "python"}, "'tags' must be a list"),
        ({"position": -1}, "'position' must be a whole number"),
        ({"title": ""}, "'title' must be a non-empty string"),
    ],
)
def test_loader_rejects_bad_values(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    directory = write_blueprint(tmp_path, "bad", **overrides)

    with pytest.raises(BlueprintError, match=message):
        blueprint_load(directory=directory)


def test_loader_keeps_nested_files_and_skips_bytecode(tmp_path: Path) -> None:
    directory = write_blueprint(tmp_path, "nested", handler="app.handlers.main")
    (directory / "app").mkdir()
    (directory / "app" / "handlers.py").write_text("def main(event, context):\n    return 1\n")
    (directory / "app" / "__pycache__").mkdir()
    (directory / "app" / "__pycache__" / "handlers.cpython-311.pyc").write_bytes(b"\x00\xff")

    spec = blueprint_load(directory=directory)

    assert sorted(spec.files) == ["app/handlers.py", "lambda_function.py"]


# --- syncing into the database ------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_creates_every_blueprint_then_changes_nothing() -> None:
    first = blueprints_sync()
    rows = {row.slug: row for row in Blueprint.objects.all()}
    second = blueprints_sync()

    assert sorted(first.created) == sorted(SLUGS)
    assert second.created == second.updated == second.deleted == []
    assert sorted(second.unchanged) == sorted(SLUGS)
    assert list(Blueprint.objects.values_list("slug", flat=True)) == SLUGS
    hello = rows["hello-world-python"]
    assert hello.test_event_template == "hello-world"
    assert hello.handler == "lambda_function.lambda_handler"
    assert "print(\"value1 = \" + event['key1'])" in hello.files["lambda_function.py"]
    assert {row.pk for row in Blueprint.objects.all()} == {row.pk for row in rows.values()}


@pytest.mark.django_db
def test_sync_updates_changed_rows_and_removes_rows_whose_folder_is_gone(tmp_path: Path) -> None:
    write_blueprint(tmp_path, "kept", title="Kept")
    write_blueprint(tmp_path, "gone")
    blueprints_sync(root=tmp_path)
    (tmp_path / "kept" / "blueprint.json").write_text(
        (tmp_path / "kept" / "blueprint.json").read_text().replace('"Kept"', '"Kept, renamed"')
    )
    for path in sorted((tmp_path / "gone").iterdir()):
        path.unlink()
    (tmp_path / "gone").rmdir()

    result = blueprints_sync(root=tmp_path)

    assert result.updated == ["kept"] and result.deleted == ["gone"]
    assert list(Blueprint.objects.values_list("slug", "title")) == [("kept", "Kept, renamed")]


@pytest.mark.django_db
def test_sync_writes_nothing_when_a_folder_is_invalid(tmp_path: Path) -> None:
    write_blueprint(tmp_path, "fine")
    write_blueprint(tmp_path, "broken", handler="missing.handler")

    with pytest.raises(BlueprintError):
        blueprints_sync(root=tmp_path)

    assert not Blueprint.objects.exists()


@pytest.mark.django_db
def test_sync_blueprints_command_reports_and_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = StringIO()
    call_command("sync_blueprints", stdout=out)
    assert "4 blueprints available (0 unchanged)" in out.getvalue()

    write_blueprint(tmp_path, "broken", runtime="cobol85")
    monkeypatch.setattr(
        "functions.management.commands.sync_blueprints.blueprints_sync",
        lambda: blueprints_sync(root=tmp_path),
    )
    with pytest.raises(CommandError, match="Invalid blueprint: broken: runtime"):
        call_command("sync_blueprints", stdout=StringIO())


# --- each blueprint runs on its own template's event -----------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_every_blueprint_runs_on_its_default_test_event(slug: str) -> None:
    spec = blueprint_load(directory=BLUEPRINTS_DIR / slug)
    event = TEMPLATE_EVENTS[spec.test_event_template]

    result = invoke(slug, json.loads(json.dumps(event)))

    json.dumps(result)  # whatever a handler returns must serialise to the JSON response


def test_hello_world_prints_the_three_values_and_returns_the_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = invoke("hello-world-python", TEMPLATE_EVENTS["hello-world"])

    assert result == "value1"
    assert capsys.readouterr().out.splitlines() == [
        "Loading function",
        "value1 = value1",
        "value2 = value2",
        "value3 = value3",
    ]


def _proxy_event(method: str, *, item_id: str | None = None, body: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(TEMPLATE_EVENTS["apigateway-aws-proxy"]))
    event["httpMethod"] = method
    event["isBase64Encoded"] = False
    event["body"] = None if body is None else json.dumps(body)
    event["pathParameters"] = {"id": item_id} if item_id else None
    return event


def _answer(response: dict[str, Any]) -> tuple[int, Any]:
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_http_backend_creates_an_item_from_the_template_event() -> None:
    module = load_handler_module("microservice-http-endpoint-python")

    status, item = _answer(
        module.lambda_handler(TEMPLATE_EVENTS["apigateway-aws-proxy"], FakeContext())
    )

    assert status == 201
    assert item["test"] == "body"
    assert uuid.UUID(item["id"])


def test_http_backend_serves_the_whole_item_lifecycle() -> None:
    module = load_handler_module("microservice-http-endpoint-python")
    call = module.lambda_handler
    ctx = FakeContext()

    created_status, created = _answer(call(_proxy_event("POST", body={"name": "Ada"}), ctx))
    item_id = created["id"]
    assert created_status == 201
    assert _answer(call(_proxy_event("GET", item_id=item_id), ctx)) == (200, created)
    assert _answer(call(_proxy_event("GET"), ctx)) == (200, {"items": [created]})

    replaced = {"name": "Grace", "id": item_id}
    assert _answer(call(_proxy_event("PUT", item_id=item_id, body={"name": "Grace"}), ctx)) == (
        200,
        replaced,
    )
    query_event = _proxy_event("GET")
    query_event["queryStringParameters"] = {"id": item_id}
    assert _answer(call(query_event, ctx)) == (200, replaced)

    assert _answer(call(_proxy_event("DELETE", item_id=item_id), ctx)) == (
        200,
        {"deleted": item_id},
    )
    status, error = _answer(call(_proxy_event("GET", item_id=item_id), ctx))
    assert status == 404 and item_id in error["message"]
    assert _answer(call(_proxy_event("DELETE", item_id=item_id), ctx))[0] == 404


def test_http_backend_rejects_bad_requests() -> None:
    module = load_handler_module("microservice-http-endpoint-python")
    call = module.lambda_handler
    ctx = FakeContext()
    not_json = _proxy_event("POST")
    not_json["body"] = "{not json"
    base64_list = _proxy_event("POST")
    base64_list["body"] = base64.b64encode(b"[1, 2]").decode()
    base64_list["isBase64Encoded"] = True

    assert _answer(call(not_json, ctx))[0] == 400
    assert _answer(call(base64_list, ctx))[0] == 400
    assert _answer(call(_proxy_event("PUT", body={"a": 1}), ctx))[0] == 400
    assert _answer(call(_proxy_event("DELETE"), ctx))[0] == 400
    patch = call(_proxy_event("PATCH", item_id="x", body={}), ctx)
    assert _answer(patch)[0] == 405
    assert patch["headers"]["Allow"] == "GET, POST, PUT, DELETE"


def test_event_logger_logs_event_and_context_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    context = FakeContext()
    module = load_handler_module("event-logger-python")

    summary = module.lambda_handler(TEMPLATE_EVENTS["cloudwatch-scheduled-event"], context)

    assert summary["requestId"] == context.aws_request_id
    assert summary["source"] == "EventBridge: aws.events / Scheduled Event"
    assert summary["eventTime"] == "1970-01-01T00:00:00Z"
    assert summary["functionName"] == "blueprint-test"
    assert "detail-type" in summary["eventKeys"]
    info = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert any('"detail-type": "Scheduled Event"' in message for message in info)
    context_lines = [message for message in info if message.startswith("Context:")]
    assert context_lines == [
        f"Context: request id {context.aws_request_id}, function blueprint-test version "
        "$LATEST, memory limit 128 MB, 2950 ms remaining"
    ]


def test_event_logger_names_other_sources() -> None:
    module = load_handler_module("event-logger-python")

    assert module.describe_source(TEMPLATE_EVENTS["sqs-receive-message"]) == "aws:sqs (1 record)"
    assert module.describe_source(TEMPLATE_EVENTS["apigateway-aws-proxy"]) == "API Gateway"
    assert module.describe_source("just a string") == "direct invocation"


def test_json_transform_reports_the_template_message_as_a_batch_item_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = invoke("json-transform-python", TEMPLATE_EVENTS["sqs-receive-message"])

    assert "Message 19dd0b57-b21e-4ac1-bd88-01bbb068cb78 not transformed: the body is not JSON" in (
        capsys.readouterr().out
    )

    assert result == {
        "batchItemFailures": [{"itemIdentifier": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78"}],
        "records": [],
        "summary": {"received": 1, "transformed": 0, "failed": 1},
    }


def test_json_transform_maps_filters_and_normalises_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    template = TEMPLATE_EVENTS["sqs-receive-message"]["Records"][0]
    bodies = {
        "m-1": {"id": "42", "userId": "u-7", "Email": " Ada@Example.COM ", "secret": "x"},
        "m-2": ["not", "an", "object"],
        "m-3": {"name": "no id"},
        "m-4": {"id": 7, "name": "  Grace ", "plan": "pro", "createdAt": "2024-01-01"},
    }
    event = {
        "Records": [
            {**template, "messageId": message_id, "body": json.dumps(body)}
            for message_id, body in bodies.items()
        ]
    }

    result = invoke("json-transform-python", event)

    assert result["records"] == [
        {"id": "42", "user_id": "u-7", "email": "ada@example.com"},
        {"id": 7, "name": "Grace", "plan": "pro", "created_at": "2024-01-01"},
    ]
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}]
    assert result["summary"] == {"received": 4, "transformed": 2, "failed": 2}
    output = capsys.readouterr().out
    assert "Message m-2 not transformed: the body is not a JSON object" in output
    assert "Message m-3 not transformed: missing field(s): id" in output
