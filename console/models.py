from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def _new_account_id() -> str:
    return f"{secrets.randbelow(10**12):012d}"


class Account(models.Model):
    """A user's 12-digit account id, used in every ARN they own."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account"
    )
    account_id = models.CharField(max_length=12, unique=True, default=_new_account_id)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.account_id
