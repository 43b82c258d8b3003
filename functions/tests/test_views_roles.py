from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.selectors import account_for_user
from console.tests.factories import make_function, signed_in_client
from functions import services

pytestmark = pytest.mark.django_db

ROLES_URL = reverse("functions:roles")


def test_it_requires_sign_in(client):
    assert client.get(ROLES_URL).status_code == 302


def test_it_lists_the_users_roles_with_arn_templates_and_usage(user: User, other_user: User):
    shared = services.role_create(owner=user, name="shared-role", policy_templates=["sqs-poller"])
    services.function_create(owner=user, name="one", role=shared)
    services.function_create(owner=user, name="two", role=shared)
    make_function(other_user, "theirs")

    response = signed_in_client(user).get(ROLES_URL)

    content = response.content.decode()
    account_id = account_for_user(user).account_id
    assert f"arn:aws:iam::{account_id}:role/service-role/shared-role" in content
    assert "Amazon SQS poller permissions" in content
    assert "2 functions" in content
    assert [row["role"].name for row in response.context["rows"]] == ["shared-role"]


def test_it_shows_an_empty_state(user: User):
    response = signed_in_client(user).get(ROLES_URL)

    assert b"No execution roles" in response.content
