"""A small JSON REST backend for an API Gateway proxy integration (REST API, payload 1.0).

Routes, by HTTP method:
  GET     list the items, or return one when an id is given
  POST    create an item from the JSON object in the body          -> 201
  PUT     replace (or create) the item with the given id
  DELETE  remove the item with the given id

The id comes from the path parameter "id" (a resource such as /items/{id}) or, failing
that, from the query string (?id=...).

Items live in memory for as long as this execution environment stays warm. Replace
ItemStore with a real database when they have to outlast it.
"""

import base64
import json
import uuid

print("Loading function")


class ItemStore:
    def __init__(self):
        self._items = {}

    def all(self):
        return list(self._items.values())

    def get(self, item_id):
        return self._items.get(item_id)

    def put(self, item_id, fields):
        item = {**fields, "id": item_id}
        self._items[item_id] = item
        return item

    def delete(self, item_id):
        return self._items.pop(item_id, None) is not None


store = ItemStore()


def respond(status_code, payload=None, headers=None):
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(payload),
    }


def error(status_code, message, headers=None):
    return respond(status_code, {"message": message}, headers)


def item_id_of(event):
    path_parameters = event.get("pathParameters") or {}
    query = event.get("queryStringParameters") or {}
    return path_parameters.get("id") or query.get("id")


def json_body(event):
    """The request body as a JSON object, or None when it is missing or not an object."""
    raw = event.get("body")
    if not raw:
        return None
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def handle_get(event, item_id):
    if item_id is None:
        return respond(200, {"items": store.all()})
    item = store.get(item_id)
    if item is None:
        return error(404, f"No item with id {item_id}")
    return respond(200, item)


def handle_post(event, item_id):
    body = json_body(event)
    if body is None:
        return error(400, "The request body must be a JSON object")
    return respond(201, store.put(str(uuid.uuid4()), body))


def handle_put(event, item_id):
    if item_id is None:
        return error(400, "PUT needs an item id")
    body = json_body(event)
    if body is None:
        return error(400, "The request body must be a JSON object")
    return respond(200, store.put(item_id, body))


def handle_delete(event, item_id):
    if item_id is None:
        return error(400, "DELETE needs an item id")
    if not store.delete(item_id):
        return error(404, f"No item with id {item_id}")
    return respond(200, {"deleted": item_id})


HANDLERS = {
    "GET": handle_get,
    "POST": handle_post,
    "PUT": handle_put,
    "DELETE": handle_delete,
}


def lambda_handler(event, context):
    method = event.get("httpMethod", "")
    handler = HANDLERS.get(method)
    if handler is None:
        return error(405, f"Unsupported method {method!r}", {"Allow": ", ".join(HANDLERS)})
    return handler(event, item_id_of(event))
