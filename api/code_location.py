"""GetFunction's Code.Location: a time-limited link to the function's deployment package,
signed with Django's signing so it works without credentials, as an S3 presigned URL does."""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from django.http import HttpRequest
from django.urls import reverse

from functions.models import CodeArtifact, Function

_SALT = "api.code-location"
# Lambda's presigned URLs are valid for ten minutes.
LIFETIME_SECONDS = 600


class CodeLocationInvalid(Exception):
    """The link was altered, has expired, or its package no longer exists."""


@dataclass(frozen=True)
class CodePackage:
    artifact: CodeArtifact
    filename: str


def code_location_url(
    request: HttpRequest, function: Function, *, code_id: str | None = None
) -> str:
    """A link to the function's package, or to `code_id` (a published version's)."""
    token = signing.dumps(
        {"sha256": code_id or function.code_id, "name": function.name}, salt=_SALT
    )
    return request.build_absolute_uri(reverse("api:code_package", args=[token]))


def code_package_for_token(token: str) -> CodePackage:
    try:
        claims = signing.loads(token, salt=_SALT, max_age=LIFETIME_SECONDS)
    except signing.BadSignature as exc:
        raise CodeLocationInvalid(str(exc)) from exc
    artifact = CodeArtifact.objects.filter(pk=claims.get("sha256", "")).first()
    if artifact is None:
        raise CodeLocationInvalid("the package no longer exists")
    name = str(claims.get("name") or "function")
    return CodePackage(artifact=artifact, filename=f"{name}-{artifact.sha256_hex[:12]}.zip")
