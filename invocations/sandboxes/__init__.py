from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from invocations.sandboxes.base import SandboxBackend

logger = logging.getLogger(__name__)

#: STRATUS_SANDBOX_BACKEND's default: Docker where an engine answers, else the process backend.
AUTO = "auto"
DOCKER_BACKEND = "invocations.sandboxes.docker.DockerSandboxBackend"
PROCESS_BACKEND = "invocations.sandboxes.process.ProcessSandboxBackend"
# The runtime whose image must exist for "auto" to choose Docker.
_DEFAULT_RUNTIME = "python3.11"
_PROBE_TIMEOUT_SECONDS = 3


@functools.cache
def get_backend() -> SandboxBackend:
    config: dict[str, Any] = settings.STRATUS_SANDBOX
    options = config.get("OPTIONS", {})
    if config["BACKEND"] == AUTO:
        return choose_backend(options)
    backend_class = import_string(config["BACKEND"])
    backend: SandboxBackend = backend_class(**options)
    return backend


def choose_backend(options: dict[str, Any] | None = None) -> SandboxBackend:
    """The Docker backend when the engine named by DOCKER_HOST answers and has the runtime
    image; otherwise the process backend, saying why."""
    reason = _docker_unusable()
    if reason is None:
        try:
            docker_backend: SandboxBackend = import_string(DOCKER_BACKEND)(**(options or {}))
        except Exception as exc:
            reason = f"the Docker backend could not start ({exc})"
        else:
            logger.info("sandbox backend: Docker (functions run in isolated containers)")
            return docker_backend
    logger.warning(
        "sandbox backend: process, because %s. Function code runs as child processes of "
        "the worker, NOT isolated from the host; set STRATUS_SANDBOX_BACKEND to choose.",
        reason,
    )
    process_backend: SandboxBackend = import_string(PROCESS_BACKEND)()
    return process_backend


def _docker_unusable() -> str | None:
    """Why the Docker backend cannot be used here, or None if it can."""
    try:
        import docker.errors
        import requests

        from invocations.runtimes import image_for
        from invocations.sandboxes.base import SandboxError
        from invocations.sandboxes.docker import docker_api
    except ImportError as exc:
        return f"the Docker SDK is missing ({exc})"
    image = image_for(_DEFAULT_RUNTIME)
    try:
        api = docker_api(timeout=_PROBE_TIMEOUT_SECONDS)
        try:
            api.ping()
            api.inspect_image(image)  # type: ignore[no-untyped-call]
        finally:
            api.close()
    except docker.errors.ImageNotFound:
        return f"the runtime image {image} is missing (build it with `make runtimes`)"
    except (SandboxError, docker.errors.DockerException, requests.RequestException) as exc:
        return f"no Docker engine answers ({exc})"
    return None
