"""Start-up checks: a malformed secrets key would otherwise surface as a failure of every
signed request."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from api import crypto


@register()
def secrets_key_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        crypto.encrypt("check")
    except ValueError as exc:
        return [
            Error(
                f"STRATUS_SECRETS_KEY is not a comma-separated list of Fernet keys: {exc}",
                hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
                id="api.E001",
            )
        ]
    return []
