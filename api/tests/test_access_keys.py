"""Access keys: the services, secrets at rest, and the console page."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from api import crypto
from api.checks import secrets_key_check
from api.models import AccessKey, AccessKeyStatus
from api.services import (
    MAX_ACCESS_KEYS_PER_USER,
    access_key_create,
    access_key_record_use,
    access_key_secret,
)
from console.tests.factories import make_user, signed_in_client

pytestmark = pytest.mark.django_db

PAGE = reverse("api:access_keys")


def test_a_new_key_looks_like_an_aws_key(user: User):
    new = access_key_create(user=user)

    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", new.access_key.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", new.secret_access_key)
    assert new.access_key.status == AccessKeyStatus.ACTIVE


def test_the_secret_is_stored_only_encrypted(user: User):
    new = access_key_create(user=user)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_accesskey")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert new.secret_access_key not in stored
    token = AccessKey.objects.get().secret_encrypted
    assert token.startswith("gAAAA")  # a Fernet token
    assert access_key_secret(access_key=new.access_key) == new.secret_access_key


def test_secrets_survive_a_key_rotation(user: User, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.STRATUS_SECRETS_KEY = old_key
    new = access_key_create(user=user)
    token = AccessKey.objects.get().secret_encrypted

    settings.STRATUS_SECRETS_KEY = f"{new_key},{old_key}"
    assert crypto.decrypt(token) == new.secret_access_key
    rotated = crypto.rotate(token)

    settings.STRATUS_SECRETS_KEY = new_key
    assert crypto.decrypt(rotated) == new.secret_access_key
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(token)


def test_without_a_configured_key_one_is_derived_from_the_secret_key(settings):
    settings.STRATUS_SECRETS_KEY = ""
    token = crypto.encrypt("s3cret")

    settings.SECRET_KEY = "another secret key entirely, long enough to be one"
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(token)


def test_a_user_has_a_bounded_number_of_keys(user: User):
    for _ in range(MAX_ACCESS_KEYS_PER_USER):
        access_key_create(user=user)

    with pytest.raises(ValidationError):
        access_key_create(user=user)


def test_last_use_is_written_at_most_once_a_minute(user: User):
    key = access_key_create(user=user).access_key
    now = timezone.now()

    access_key_record_use(access_key=key, region="us-east-1", service="lambda", now=now)
    access_key_record_use(
        access_key=key, region="us-east-1", service="lambda", now=now + timedelta(seconds=30)
    )
    assert AccessKey.objects.get().last_used_at == now

    later = now + timedelta(minutes=2)
    access_key_record_use(access_key=key, region="us-east-1", service="lambda", now=later)
    assert AccessKey.objects.get().last_used_at == later


def test_the_page_needs_sign_in(client):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_creating_a_key_shows_the_secret_once(user: User):
    browser = signed_in_client(user)

    created = browser.post(reverse("api:access_key_create"))
    key = AccessKey.objects.get(user=user)
    secret = access_key_secret(access_key=key)

    page = created.content.decode()
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    assert key.access_key_id in page
    assert secret in page
    listed = browser.get(PAGE).content.decode()
    assert key.access_key_id in listed
    assert secret not in listed


def test_the_page_lists_keys_with_status_and_last_use(user: User):
    key = access_key_create(user=user).access_key
    access_key_record_use(access_key=key, region="us-east-1", service="lambda", now=timezone.now())

    page = signed_in_client(user).get(PAGE).content.decode()

    assert key.access_key_id in page
    assert "Active" in page
    assert "lambda in us-east-1" in page
    assert 'aria-current="page">Access keys</a>' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\son[a-z]+=", page)


def test_deactivate_activate_and_delete(user: User):
    key = access_key_create(user=user).access_key
    browser = signed_in_client(user)

    browser.post(reverse("api:access_key_deactivate", args=[key.access_key_id]))
    assert AccessKey.objects.get().status == AccessKeyStatus.INACTIVE
    assert "Inactive" in browser.get(PAGE).content.decode()

    browser.post(reverse("api:access_key_activate", args=[key.access_key_id]))
    assert AccessKey.objects.get().status == AccessKeyStatus.ACTIVE

    unconfirmed = browser.post(reverse("api:access_key_delete", args=[key.access_key_id]))
    assert unconfirmed.status_code == 302
    assert AccessKey.objects.exists()
    browser.post(
        reverse("api:access_key_delete", args=[key.access_key_id]),
        {"confirm": key.access_key_id},
    )
    assert not AccessKey.objects.exists()


def test_another_users_key_cannot_be_seen_or_touched(user: User):
    theirs = access_key_create(user=make_user("bob")).access_key
    browser = signed_in_client(user)

    assert theirs.access_key_id not in browser.get(PAGE).content.decode()
    for name, data in [
        ("api:access_key_deactivate", {}),
        ("api:access_key_delete", {"confirm": theirs.access_key_id}),
    ]:
        assert browser.post(reverse(name, args=[theirs.access_key_id]), data).status_code == 404
    assert AccessKey.objects.get().status == AccessKeyStatus.ACTIVE


def test_key_actions_need_post(user: User):
    key = access_key_create(user=user).access_key
    browser = signed_in_client(user)

    assert (
        browser.get(reverse("api:access_key_delete", args=[key.access_key_id])).status_code == 405
    )
    assert browser.get(reverse("api:access_key_create")).status_code == 405


def test_the_rotate_secrets_command_re_encrypts_under_the_new_key(user: User, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.STRATUS_SECRETS_KEY = old_key
    created = access_key_create(user=user)

    settings.STRATUS_SECRETS_KEY = f"{new_key},{old_key}"
    output = io.StringIO()
    call_command("rotate_secrets", stdout=output)

    settings.STRATUS_SECRETS_KEY = new_key
    assert "Re-encrypted 1 access key secret(s)." in output.getvalue()
    assert access_key_secret(access_key=AccessKey.objects.get()) == created.secret_access_key


def test_a_malformed_secrets_key_fails_the_system_checks(settings):
    settings.STRATUS_SECRETS_KEY = "not-a-fernet-key"

    assert [message.id for message in secrets_key_check()] == ["api.E001"]


def test_the_page_explains_when_the_key_limit_is_reached(user: User):
    for _ in range(MAX_ACCESS_KEYS_PER_USER):
        access_key_create(user=user)

    response = signed_in_client(user).post(reverse("api:access_key_create"), follow=True)

    assert AccessKey.objects.count() == MAX_ACCESS_KEYS_PER_USER
    assert "already have 10 access keys" in response.content.decode()
