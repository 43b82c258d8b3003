"""Load functions/blueprints/ into the Blueprint table (idempotent; run by `make setup`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from functions.blueprint_loader import BlueprintError, blueprints_sync


class Command(BaseCommand):
    help = "Create, update and delete Blueprint rows to match the folders in functions/blueprints/."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = blueprints_sync()
        except BlueprintError as exc:
            raise CommandError(f"Invalid blueprint: {exc}") from exc
        for label, slugs in (
            ("created", result.created),
            ("updated", result.updated),
            ("deleted", result.deleted),
        ):
            if slugs:
                self.stdout.write(f"Blueprints {label}: {', '.join(slugs)}")
        total = len(result.created) + len(result.updated) + len(result.unchanged)
        self.stdout.write(f"{total} blueprints available ({len(result.unchanged)} unchanged)")
