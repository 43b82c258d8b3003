"""Re-encrypt every stored access key secret under the first key of STRATUS_SECRETS_KEY.

Rotation: put the new key first (`NEW,OLD`), run this command, then drop the old key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api import crypto
from api.models import AccessKey


class Command(BaseCommand):
    help = "Re-encrypt stored access key secrets under the first configured secrets key."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = 0
        with transaction.atomic():
            for key in AccessKey.objects.select_for_update().only("pk", "secret_encrypted"):
                try:
                    token = crypto.rotate(key.secret_encrypted)
                except crypto.SecretUnreadable as exc:
                    raise CommandError(
                        f"Access key {key.pk} cannot be decrypted with the configured keys."
                    ) from exc
                AccessKey.objects.filter(pk=key.pk).update(secret_encrypted=token)
                rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} access key secret(s).")
