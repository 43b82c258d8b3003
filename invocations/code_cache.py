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


def link_into(source: Path, target: Path) -> None:
    """Put the files of the unpacked package `source` into the empty folder `target` (a
    stem cell's task root): hard links where the file system allows, copies elsewhere.
    The folders end with the package's modes (read-only)."""
    folders: list[tuple[Path, int]] = [(target, source.stat().st_mode & 0o7777)]
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_symlink():
            destination.symlink_to(os.readlink(path))
        elif path.is_dir():
            destination.mkdir(mode=0o755)
            folders.append((destination, path.stat().st_mode & 0o7777))
        else:
            try:
                os.link(path, destination)
            except OSError:
                shutil.copy2(path, destination)
    for folder, mode in reversed(folders):
        folder.chmod(mode)
