"""The console's catalog of test event templates, one JSON file per template in
`event_templates/`: `{"name": ..., "group": ..., "event": {...}}`, named `<id>.json`.

Events may hold the console's placeholders `{{{accountId}}}` (the user's account id) and
`{{{md5_of_body}}}` (the MD5 of the `body` next to it, as SQS computes it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parent / "event_templates"
DEFAULT_TEMPLATE_ID = "hello-world"
ACCOUNT_ID_PLACEHOLDER = "{{{accountId}}}"
MD5_OF_BODY_PLACEHOLDER = "{{{md5_of_body}}}"


class UnknownEventTemplate(LookupError):
    pass


@dataclass(frozen=True)
class EventTemplate:
    id: str
    name: str
    group: str
    event: Any


@cache
def _catalog() -> dict[str, EventTemplate]:
    templates: dict[str, EventTemplate] = {}
    for path in sorted(TEMPLATE_DIR.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        templates[path.stem] = EventTemplate(
            id=path.stem, name=document["name"], group=document["group"], event=document["event"]
        )
    return templates


def list_templates() -> list[tuple[str, str, str]]:
    """(id, display name, group) of every template: Hello World first, then by name."""
    templates = sorted(
        _catalog().values(),
        key=lambda template: (template.id != DEFAULT_TEMPLATE_ID, template.name.lower()),
    )
    return [(template.id, template.name, template.group) for template in templates]


def template_exists(template_id: str) -> bool:
    return template_id in _catalog()


def render_template(template_id: str, *, account_id: str) -> str:
    """The template's event as pretty JSON with its placeholders filled in."""
    try:
        template = _catalog()[template_id]
    except KeyError as exc:
        raise UnknownEventTemplate(template_id) from exc
    return json.dumps(_fill(template.event, account_id=account_id), indent=2, ensure_ascii=False)


def _fill(value: Any, *, account_id: str, body: str | None = None) -> Any:
    if isinstance(value, dict):
        own_body = value.get("body")
        sibling_body = own_body if isinstance(own_body, str) else None
        return {
            key: _fill(item, account_id=account_id, body=sibling_body)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_fill(item, account_id=account_id) for item in value]
    if isinstance(value, str):
        filled = value.replace(ACCOUNT_ID_PLACEHOLDER, account_id)
        if MD5_OF_BODY_PLACEHOLDER in filled and body is not None:
            digest = hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()
            filled = filled.replace(MD5_OF_BODY_PLACEHOLDER, digest)
        return filled
    return value
