"""Secrets at rest: Fernet tokens under keys kept outside the database.

The keys come from the setting (or environment variable) STRATUS_SECRETS_KEY: one or more
comma-separated Fernet keys, the first one encrypting, all of them decrypting, so a key can
be rotated. Without it, one key is derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_DERIVATION_INFO = b"stratus secrets at rest"


class SecretUnreadable(Exception):
    """The token was not made with any of the configured keys, or was altered."""


def derive_key(secret_key: str) -> bytes:
    """A Fernet key derived from Django's SECRET_KEY."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw)


@lru_cache(maxsize=8)
def _fernet(configured_keys: str, secret_key: str) -> MultiFernet:
    keys = [key.strip().encode() for key in configured_keys.split(",") if key.strip()]
    return MultiFernet([Fernet(key) for key in keys or [derive_key(secret_key)]])


def _current() -> MultiFernet:
    configured = getattr(settings, "STRATUS_SECRETS_KEY", None)
    if configured is None:
        configured = os.environ.get("STRATUS_SECRETS_KEY", "")
    return _fernet(str(configured), str(settings.SECRET_KEY))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _decrypt(token, _current())


# Signed requests decrypt the same few secrets over and over; a process that can decrypt
# them at all gains nothing from forgetting them.
@lru_cache(maxsize=1024)
def _decrypt(token: str, fernet: MultiFernet) -> str:
    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("the secret cannot be decrypted with the configured keys") from exc


def rotate(token: str) -> str:
    """The token re-encrypted under the first configured key."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("the secret cannot be decrypted with the configured keys") from exc
