"""Create the first administrator account, once.

With DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL set (the variables Django's own
createsuperuser reads) the account is made from them; otherwise the user is `admin` with a
generated password that is printed exactly once, when the account is created.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

DEFAULT_USERNAME = "admin"
_GENERATED_PASSWORD_BYTES = 12


def password_box(*, username: str, password: str) -> str:
    lines = [
        "Stratus administrator account created",
        "",
        f"  username: {username}",
        f"  password: {password}",
        "",
        "This password is shown only this once. Sign in and change it, or set a",
        f"new one with: python manage.py changepassword {username}",
    ]
    width = max(len(line) for line in lines) + 4
    border = "+" + "-" * width + "+"
    body = [f"|  {line.ljust(width - 4)}  |" for line in lines]
    return "\n".join([border, *body, border])


class Command(BaseCommand):
    help = "Create the first superuser if none exists (from DJANGO_SUPERUSER_* or generated)."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(f"Administrator account exists: {existing.get_username()}")
            return

        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or DEFAULT_USERNAME
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(_GENERATED_PASSWORD_BYTES)

        if user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).exists():
            raise CommandError(
                f"A user named {username!r} exists but is not a superuser. Promote it with "
                "the admin site, or set DJANGO_SUPERUSER_USERNAME to another name."
            )
        try:
            with transaction.atomic():
                user_model.objects.create_superuser(
                    username=username, email=email, password=password
                )
        except IntegrityError:
            # Another process (a second web container, say) created it first.
            self.stdout.write(f"Administrator account exists: {username}")
            return

        if generated:
            self.stdout.write(password_box(username=username, password=password))
        else:
            self.stdout.write(
                f"Administrator account created: {username} "
                "(password from DJANGO_SUPERUSER_PASSWORD)"
            )
