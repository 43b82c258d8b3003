"""Blueprints: sample code plus a configuration preset, kept as folders in functions/blueprints/.

Each folder is one blueprint, named by its slug. It holds `blueprint.json` (title,
description, runtime, handler, tags, test_event_template, position) and the code files that
a function created from it starts with.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from functions.models import Blueprint, Runtime

BLUEPRINTS_DIR = Path(__file__).resolve().parent / "blueprints"
MANIFEST_NAME = "blueprint.json"
REQUIRED_KEYS = (
    "title",
    "description",
    "runtime",
    "handler",
    "tags",
    "test_event_template",
    "position",
)
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HANDLER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_SKIPPED_NAMES = {"__pycache__", MANIFEST_NAME}


class BlueprintError(ValueError):
    """A blueprint folder that cannot be used as it is."""


@dataclass(frozen=True)
class BlueprintSpec:
    slug: str
    title: str
    description: str
    runtime: str
    handler: str
    tags: list[str]
    files: dict[str, str]
    test_event_template: str
    position: int

    def as_fields(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "runtime": self.runtime,
            "handler": self.handler,
            "tags": list(self.tags),
            "files": dict(self.files),
            "test_event_template": self.test_event_template,
            "position": self.position,
        }


@dataclass(frozen=True)
class SyncResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]


def _read_files(directory: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or any(
            part in _SKIPPED_NAMES or part.startswith(".") or part.endswith(".pyc")
            for part in relative.parts
        ):
            continue
        try:
            files[relative.as_posix()] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise BlueprintError(f"{directory.name}: {relative} is not UTF-8 text") from exc
    return files


def _handler_module_path(handler: str) -> str:
    module, _, _function = handler.rpartition(".")
    return module.replace(".", "/") + ".py"


def blueprint_load(*, directory: Path) -> BlueprintSpec:
    slug = directory.name
    if not _SLUG.match(slug):
        raise BlueprintError(f"{slug!r} is not a valid blueprint slug (lower-case, hyphens)")
    manifest_path = directory / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BlueprintError(f"{slug}: {MANIFEST_NAME} is missing") from exc
    except ValueError as exc:
        raise BlueprintError(f"{slug}: {MANIFEST_NAME} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BlueprintError(f"{slug}: {MANIFEST_NAME} must hold a JSON object")

    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BlueprintError(f"{slug}: {MANIFEST_NAME} lacks {', '.join(missing)}")
    for key in ("title", "description", "runtime", "handler", "test_event_template"):
        if not isinstance(manifest[key], str) or not manifest[key].strip():
            raise BlueprintError(f"{slug}: {key!r} must be a non-empty string")
    tags = manifest["tags"]
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
        raise BlueprintError(f"{slug}: 'tags' must be a list of non-empty strings")
    position = manifest["position"]
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise BlueprintError(f"{slug}: 'position' must be a whole number, 0 or more")
    runtime = manifest["runtime"]
    if runtime not in Runtime.values:
        raise BlueprintError(
            f"{slug}: runtime {runtime!r} is not one of {', '.join(Runtime.values)}"
        )
    handler = manifest["handler"]
    if not _HANDLER.match(handler):
        raise BlueprintError(f"{slug}: handler {handler!r} is not of the form module.function")

    files = _read_files(directory)
    module_path = _handler_module_path(handler)
    if module_path not in files:
        raise BlueprintError(f"{slug}: handler module {module_path} is missing")

    return BlueprintSpec(
        slug=slug,
        title=manifest["title"].strip(),
        description=manifest["description"].strip(),
        runtime=runtime,
        handler=handler,
        tags=list(tags),
        files=files,
        test_event_template=manifest["test_event_template"],
        position=position,
    )


def blueprints_load_all(*, root: Path = BLUEPRINTS_DIR) -> list[BlueprintSpec]:
    specs = [
        blueprint_load(directory=directory)
        for directory in sorted(root.iterdir())
        if directory.is_dir() and not directory.name.startswith((".", "_"))
    ]
    return sorted(specs, key=lambda spec: (spec.position, spec.title))


@transaction.atomic
def blueprints_sync(*, root: Path = BLUEPRINTS_DIR) -> SyncResult:
    """Make the Blueprint rows match the folders: upsert each one, delete rows whose folder
    is gone. Every folder is validated before anything is written."""
    specs = blueprints_load_all(root=root)
    existing = {blueprint.slug: blueprint for blueprint in Blueprint.objects.all()}
    result = SyncResult(created=[], updated=[], unchanged=[], deleted=[])

    for spec in specs:
        fields = spec.as_fields()
        current = existing.pop(spec.slug, None)
        if current is None:
            Blueprint.objects.create(slug=spec.slug, **fields)
            result.created.append(spec.slug)
        elif all(getattr(current, name) == value for name, value in fields.items()):
            result.unchanged.append(spec.slug)
        else:
            for name, value in fields.items():
                setattr(current, name, value)
            current.save()
            result.updated.append(spec.slug)

    for slug in existing:
        result.deleted.append(slug)
    Blueprint.objects.filter(slug__in=result.deleted).delete()
    return result
