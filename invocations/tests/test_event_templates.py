from __future__ import annotations

import hashlib
import json

import pytest

from invocations import event_templates

ACCOUNT_ID = "210987654321"
REQUIRED_TEMPLATES = {
    "hello-world",
    "apigateway-aws-proxy",
    "apigateway-http-api-proxy",
    "s3-put",
    "s3-delete",
    "sqs-receive-message",
    "sns-notification",
    "cloudwatch-scheduled-event",
    "dynamodb-update",
    "kinesis-get-records",
    "cloudwatch-logs",
}
TEMPLATE_IDS = [template_id for template_id, _, _ in event_templates.list_templates()]


def test_catalog_holds_the_consoles_common_templates_with_hello_world_first():
    templates = event_templates.list_templates()

    assert set(TEMPLATE_IDS) >= REQUIRED_TEMPLATES
    assert templates[0] == ("hello-world", "Hello World", "Common")
    names = [name.lower() for _, name, _ in templates[1:]]
    assert names == sorted(names)
    assert ("sqs-receive-message", "SQS", "AWS") in templates


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_every_template_renders_to_pretty_json_with_no_placeholders_left(template_id):
    rendered = event_templates.render_template(template_id, account_id=ACCOUNT_ID)

    event = json.loads(rendered)
    assert "{{{" not in rendered and "}}}" not in rendered
    assert rendered == json.dumps(event, indent=2, ensure_ascii=False)


def test_hello_world_is_exactly_the_consoles_event():
    rendered = event_templates.render_template("hello-world", account_id=ACCOUNT_ID)

    assert rendered == '{\n  "key1": "value1",\n  "key2": "value2",\n  "key3": "value3"\n}'


def test_account_id_placeholder_is_filled_with_the_users_account():
    rendered = event_templates.render_template("sns-notification", account_id=ACCOUNT_ID)

    record = json.loads(rendered)["Records"][0]
    assert record["EventSubscriptionArn"] == f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:ExampleTopic"


def test_sqs_md5_of_body_is_the_md5_of_the_message_body():
    record = json.loads(
        event_templates.render_template("sqs-receive-message", account_id=ACCOUNT_ID)
    )["Records"][0]

    assert record["body"] == "Hello from SQS!"
    assert record["md5OfBody"] == hashlib.md5(b"Hello from SQS!").hexdigest()
    assert record["eventSourceARN"] == f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:MyQueue"


def test_api_gateway_rest_proxy_event_has_every_key_lambda_sends():
    event = json.loads(
        event_templates.render_template("apigateway-aws-proxy", account_id=ACCOUNT_ID)
    )

    assert set(event) == {
        "body",
        "resource",
        "path",
        "httpMethod",
        "isBase64Encoded",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "headers",
        "multiValueHeaders",
        "requestContext",
    }
    assert {
        "accountId",
        "resourceId",
        "stage",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "identity",
        "path",
        "resourcePath",
        "httpMethod",
        "apiId",
        "protocol",
    } <= set(event["requestContext"])
    assert event["requestContext"]["accountId"] == ACCOUNT_ID
    assert event["isBase64Encoded"] is True and event["httpMethod"] == "POST"


def test_http_api_event_is_payload_format_2_0():
    event = json.loads(
        event_templates.render_template("apigateway-http-api-proxy", account_id=ACCOUNT_ID)
    )

    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert {"http", "requestId", "routeKey", "stage", "time", "timeEpoch"} <= set(
        event["requestContext"]
    )


def test_stream_and_log_templates_carry_real_records():
    dynamodb = json.loads(event_templates.render_template("dynamodb-update", account_id="1"))
    kinesis = json.loads(event_templates.render_template("kinesis-get-records", account_id="1"))
    logs = json.loads(event_templates.render_template("cloudwatch-logs", account_id="1"))

    assert [r["eventName"] for r in dynamodb["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert kinesis["Records"][0]["eventName"] == "aws:kinesis:record"
    assert set(logs) == {"awslogs"} and logs["awslogs"]["data"].startswith("H4sI")


def test_unknown_template_is_refused():
    with pytest.raises(event_templates.UnknownEventTemplate):
        event_templates.render_template("no-such-template", account_id=ACCOUNT_ID)
