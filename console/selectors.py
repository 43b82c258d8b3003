from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from console.models import Account


def account_for_user(user: AbstractBaseUser | AnonymousUser) -> Account:
    """The user's account (created on first use)."""
    if user.pk is None:
        raise ValueError("anonymous users have no account")
    account, _ = Account.objects.get_or_create(user_id=user.pk)
    return account


def function_arn(*, account_id: str, function_name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{settings.STRATUS_REGION}:{account_id}:function:{function_name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def role_arn(*, account_id: str, path: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role{path}{role_name}"
