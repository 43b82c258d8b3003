"""Unpacked code packages on the worker's disk, one folder per content hash."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

from django.conf import settings

from functions.models import CodeArtifact

_lock = threading.Lock()


def code_dir(sha256_hex: str) -> Path:
    """The folder holding the package's files, unpacked on first use."""
    root = Path(settings.STRATUS_CODE_CACHE_DIR)
    target = root / sha256_hex
    if target.is_dir():
        return target
    with _lock:
        if target.is_dir():
            return target
        zip_bytes = bytes(
            CodeArtifact.objects.values_list("zip_bytes", flat=True).get(pk=sha256_hex)
        )
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{sha256_hex[:12]}-", dir=root))
        try:
            with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
                archive.extractall(staging)
            _make_read_only(staging)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _make_read_only(folder: Path) -> None:
    for path in folder.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    folder.chmod(0o555)
