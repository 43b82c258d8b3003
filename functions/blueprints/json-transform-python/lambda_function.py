"""Transforms the JSON records carried by an SQS batch, with a partial batch response.

Each message body is parsed as a JSON object; its fields are renamed and filtered with
FIELD_MAP and normalised (strings trimmed, e-mail addresses lower-cased). Messages that
cannot be transformed are reported in "batchItemFailures", so that with
ReportBatchItemFailures turned on for the queue only those messages are retried.

Example body: {"id": "42", "userId": "u-7", "Email": " Ada@Example.com ", "plan": "pro"}
"""

import json

# Incoming field -> outgoing field. Fields that are not listed are dropped.
FIELD_MAP = {
    "id": "id",
    "userId": "user_id",
    "name": "name",
    "Email": "email",
    "email": "email",
    "plan": "plan",
    "createdAt": "created_at",
}
REQUIRED_FIELDS = ("id",)


class TransformError(ValueError):
    pass


def normalise(field, value):
    if isinstance(value, str):
        value = value.strip()
        if field == "email":
            value = value.lower()
    return value


def transform(record):
    if not isinstance(record, dict):
        raise TransformError("the body is not a JSON object")
    result = {}
    for source, target in FIELD_MAP.items():
        if record.get(source) is not None:
            result[target] = normalise(target, record[source])
    missing = [field for field in REQUIRED_FIELDS if field not in result]
    if missing:
        raise TransformError(f"missing field(s): {', '.join(missing)}")
    return result


def lambda_handler(event, context):
    transformed = []
    failures = []
    for message in event.get("Records", []):
        message_id = message.get("messageId")
        try:
            body = json.loads(message.get("body") or "")
        except json.JSONDecodeError:
            print(f"Message {message_id} not transformed: the body is not JSON")
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            transformed.append(transform(body))
        except TransformError as exc:
            print(f"Message {message_id} not transformed: {exc}")
            failures.append({"itemIdentifier": message_id})

    print(f"Transformed {len(transformed)} record(s), {len(failures)} failed")
    return {
        "batchItemFailures": failures,
        "records": transformed,
        "summary": {
            "received": len(transformed) + len(failures),
            "transformed": len(transformed),
            "failed": len(failures),
        },
    }
