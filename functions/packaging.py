"""Deployment packages: ZIP files built from editor files, stored once per content."""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import zipfile
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from functions.models import CodeArtifact

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
# The console's inline editor works on packages up to this size, as Lambda's does.
EDITOR_MAX_BYTES = 3 * 1024 * 1024
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class PackageDigest:
    sha256_hex: str
    code_sha256: str  # base64 of the raw digest, as Lambda reports CodeSha256
    size: int


def digest(zip_bytes: bytes) -> PackageDigest:
    raw = hashlib.sha256(zip_bytes).digest()
    return PackageDigest(raw.hex(), base64.b64encode(raw).decode(), len(zip_bytes))


def normalise_path(path: str) -> str:
    """A safe relative path inside the package, or ValidationError."""
    cleaned = path.replace("\\", "/").strip()
    normal = posixpath.normpath(cleaned)
    if (
        not cleaned
        or cleaned.startswith("/")
        or normal.startswith("..")
        or normal in {".", ""}
        or len(normal) > 255
    ):
        raise ValidationError(f"{path!r} is not a valid file path in a deployment package.")
    return normal


def build_zip(files: dict[str, str]) -> bytes:
    """A ZIP of `files`, byte-identical for identical content so its hash is stable."""
    if not files:
        raise ValidationError("A deployment package needs at least one file.")
    normalised: dict[str, str] = {}
    for path, text in files.items():
        normal = normalise_path(path)
        if normal in normalised:
            raise ValidationError(f"The file {normal!r} appears twice.")
        normalised[normal] = text
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(normalised):
            info = zipfile.ZipInfo(path, date_time=_FIXED_DATE)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, normalised[path].encode("utf-8"))
    return buffer.getvalue()


def check_zip(zip_bytes: bytes) -> None:
    """Reject what Lambda rejects: not a ZIP, too large, unsafe member paths."""
    if len(zip_bytes) > MAX_ZIPPED_BYTES:
        raise ValidationError(
            f"The deployment package is {len(zip_bytes)} bytes; the limit is {MAX_ZIPPED_BYTES}."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            total = 0
            for info in archive.infolist():
                normalise_path(info.filename.rstrip("/") or ".")
                total += info.file_size
    except zipfile.BadZipFile as exc:
        raise ValidationError("Could not unzip the uploaded file: it is not a ZIP.") from exc
    if total > MAX_UNZIPPED_BYTES:
        raise ValidationError(
            f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes (it is {total})."
        )


def store(zip_bytes: bytes) -> CodeArtifact:
    check_zip(zip_bytes)
    package = digest(zip_bytes)
    artifact, _ = CodeArtifact.objects.get_or_create(
        sha256_hex=package.sha256_hex, defaults={"size": package.size, "zip_bytes": zip_bytes}
    )
    return artifact


def read_text_files(zip_bytes: bytes) -> dict[str, str] | None:
    """The package's files as text for the editor, or None when it cannot be edited inline
    (too large, or holding binary files)."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if sum(info.file_size for info in infos) > EDITOR_MAX_BYTES:
            return None
        files = {}
        for info in infos:
            try:
                files[info.filename] = archive.read(info).decode("utf-8")
            except UnicodeDecodeError:
                return None
    return files
