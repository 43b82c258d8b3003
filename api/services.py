"""Access keys: create (the secret is returned once and stored only encrypted), deactivate,
activate, delete, and the record of when and where a key was last used."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from api import crypto
from api.models import AccessKey, AccessKeyStatus

ACCESS_KEY_ID_PREFIX = "AKIA"
# AWS access key ids are 20 characters of upper-case base32; secrets 40 of base64.
_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
SECRET_LENGTH = 40
MAX_ACCESS_KEYS_PER_USER = 10
# "Last used" is kept to the minute, so signed requests do not each write to the database.
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewAccessKey:
    access_key: AccessKey
    secret_access_key: str


def _new_access_key_id() -> str:
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(20 - len(ACCESS_KEY_ID_PREFIX)))
    return ACCESS_KEY_ID_PREFIX + suffix


def _new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def access_key_create(*, user: AbstractBaseUser) -> NewAccessKey:
    """A new active key. The secret is in the result and nowhere else in plain text."""
    if AccessKey.objects.filter(user_id=user.pk).count() >= MAX_ACCESS_KEYS_PER_USER:
        raise ValidationError(
            f"You already have {MAX_ACCESS_KEYS_PER_USER} access keys, the most a user may "
            "have. Delete one you no longer use first."
        )
    secret = _new_secret()
    encrypted = crypto.encrypt(secret)
    for _ in range(5):
        try:
            with transaction.atomic():
                key = AccessKey.objects.create(
                    user_id=user.pk, access_key_id=_new_access_key_id(), secret_encrypted=encrypted
                )
        except IntegrityError:
            continue
        return NewAccessKey(access_key=key, secret_access_key=secret)
    raise RuntimeError("could not find an unused access key id")


def access_key_deactivate(*, access_key: AccessKey) -> AccessKey:
    return _set_status(access_key, AccessKeyStatus.INACTIVE)


def access_key_activate(*, access_key: AccessKey) -> AccessKey:
    return _set_status(access_key, AccessKeyStatus.ACTIVE)


def _set_status(access_key: AccessKey, status: AccessKeyStatus) -> AccessKey:
    AccessKey.objects.filter(pk=access_key.pk).update(status=status)
    access_key.status = status
    return access_key


def access_key_delete(*, access_key: AccessKey) -> None:
    access_key.delete()


def access_key_secret(*, access_key: AccessKey) -> str:
    """The plain secret, for verifying a signature. Raises crypto.SecretUnreadable."""
    return crypto.decrypt(access_key.secret_encrypted)


def access_key_record_use(
    *, access_key: AccessKey, region: str, service: str, now: datetime
) -> None:
    """Remember when and where the key was last used, at most once a minute per key."""
    last = access_key.last_used_at
    unchanged = access_key.last_used_region == region and access_key.last_used_service == service
    if last is not None and unchanged and now - last < LAST_USED_GRANULARITY:
        return
    AccessKey.objects.filter(pk=access_key.pk).update(
        last_used_at=now, last_used_region=region, last_used_service=service
    )
    access_key.last_used_at = now
    access_key.last_used_region = region
    access_key.last_used_service = service
