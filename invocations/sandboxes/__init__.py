from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from invocations.sandboxes.base import SandboxBackend


@functools.cache
def get_backend() -> SandboxBackend:
    config: dict[str, Any] = settings.STRATUS_SANDBOX
    backend_class = import_string(config["BACKEND"])
    backend: SandboxBackend = backend_class(**config.get("OPTIONS", {}))
    return backend
