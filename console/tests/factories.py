"""Builders for console view tests: users, functions and blueprints made through the
services, as the console itself makes them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.test import Client

from functions import services
from functions.models import Blueprint, Function

HELLO_CODE = "def lambda_handler(event, context):\n    return 'hello'\n"


def make_user(username: str, *, staff: bool = False) -> User:
    return User.objects.create_user(username=username, password="x-" + username, is_staff=staff)


def signed_in_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_function(owner: User, name: str = "hello", **changes: Any) -> Function:
    return services.function_create(
        owner=owner, name=name, role=None, files={"lambda_function.py": HELLO_CODE}, **changes
    )


def make_blueprint(slug: str = "echo-python", **fields: Any) -> Blueprint:
    defaults: dict[str, Any] = {
        "title": "Echo",
        "description": "Returns the event it receives.",
        "runtime": "python3.11",
        "handler": "app.handler",
        "tags": ["python", "starter"],
        "files": {"app.py": "def handler(event, context):\n    return event\n"},
        "test_event_template": "hello-world",
    }
    defaults.update(fields)
    return Blueprint.objects.create(slug=slug, **defaults)
