"""Disk-backed scratch volumes: each execution environment's /tmp.

A volume is a sparse file holding a fresh ext4 filesystem, loop-mounted on the host and
bind-mounted into the container. Unlike a tmpfs, what a function writes to /tmp does not
count against its memory limit, and the filesystem's size is the cap: writing past it
fails with ENOSPC, as on Lambda. The filesystem offers exactly the configured size (its
own metadata comes on top), so a function can store as much as it could on Lambda.

Every volume is made new and removed with its environment, so no environment ever sees
what another left behind. Volumes live under a folder per worker process, so the volumes
of a worker that died can be found and removed. Needs root (mount and losetup).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from invocations.sandboxes.base import SandboxError

logger = logging.getLogger(__name__)

_MB = 1024 * 1024
_BLOCK_BYTES = 4096
# One inode per 16 KiB, ext4's usual ratio: room for as many small files as on Lambda.
_BYTES_PER_INODE = 16 * 1024
# No journal (nothing to recover after a crash), no room kept for root or for resizing,
# inode tables left unzeroed (the file is new, so they read as zeros), no discards.
_MKFS_OPTIONS = ("-q", "-F", "-b", str(_BLOCK_BYTES), "-m", "0", "-O", "^has_journal,^resize_inode")
# nodelalloc: blocks are allocated on write(), so ENOSPC is reported there and not lost
# in a later writeback; with it, the clusters ext4 keeps back for delayed allocation
# are not needed and are given to the function.
MOUNT_OPTIONS = "loop,rw,nosuid,nodev,noatime,nodelalloc,noinit_itable"
_COMMAND_TIMEOUT_SECONDS = 30
_CALIBRATION_ATTEMPTS = 6
_MOUNTINFO = Path("/proc/self/mountinfo")


class ScratchError(SandboxError):
    """A scratch volume could not be made or removed."""


class ScratchVolume:
    """One mounted scratch filesystem; `mountpoint` is what goes to /tmp."""

    def __init__(self, *, image: Path, mountpoint: Path, size_mb: int) -> None:
        self.image = image
        self.mountpoint = mountpoint
        self.size_mb = size_mb
        self._removed = False

    def remove(self) -> None:
        """Unmount (which frees the loop device) and delete the file. Idempotent."""
        if self._removed:
            return
        _unmount(self.mountpoint)
        with contextlib.suppress(FileNotFoundError):
            self.mountpoint.rmdir()
        with contextlib.suppress(FileNotFoundError):
            self.image.unlink()
        self._removed = True


class ScratchVolumes:
    """The folder of one worker process (`root`/`owner`) and the scratch volumes in it.
    The Docker backend keeps its environments' other host files there too, so that
    removing a dead worker's folder removes all it left."""

    def __init__(self, *, root: Path, owner: str, uid: int, gid: int) -> None:
        self.root = root
        self.owner = owner
        self.uid = uid
        self.gid = gid
        self._lock = threading.Lock()
        # Size in MB -> image bytes whose filesystem offers exactly that many MB.
        self._image_bytes: dict[int, int] = {}

    @property
    def folder(self) -> Path:
        return self.root / self.owner

    def ensure_folder(self) -> Path:
        """The owner's folder, private to it: containers reach what is inside through their
        bind mounts, other users of the host not at all."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.folder

    def create(self, name: str, size_mb: int) -> ScratchVolume:
        """A new, empty filesystem of `size_mb` MB, mounted and owned by uid:gid."""
        if size_mb <= 0:
            raise ScratchError(f"scratch size must be positive, not {size_mb} MB")
        self.ensure_folder()
        with self._lock:
            image_bytes = self._image_bytes.get(size_mb)
        if image_bytes is not None:
            return self._make(name, size_mb, image_bytes)
        return self._calibrate(name, size_mb)

    def remove_orphans(self, *, owner_alive: Callable[[str], bool]) -> int:
        """Remove the volumes of owners (worker processes) that are gone; return how many."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name == self.owner or owner_alive(folder.name):
                continue
            for mountpoint in _mounts_under(folder):
                try:
                    _unmount(mountpoint)
                except ScratchError:
                    logger.exception("could not unmount orphaned scratch volume %s", mountpoint)
                    continue
                removed += 1
            if not _mounts_under(folder):
                shutil.rmtree(folder, ignore_errors=True)
        return removed

    def _calibrate(self, name: str, size_mb: int) -> ScratchVolume:
        """Grow the file until the filesystem in it offers `size_mb` MB; remember the size.

        The metadata ext4 needs depends on the size, so it is measured, not guessed: each
        round adds what the last one fell short by (two rounds usually suffice).
        """
        target_blocks = size_mb * _MB // _BLOCK_BYTES
        image_bytes = size_mb * _MB
        for _ in range(_CALIBRATION_ATTEMPTS):
            volume = self._make(name, size_mb, image_bytes)
            usable_blocks = os.statvfs(volume.mountpoint).f_blocks
            if usable_blocks >= target_blocks:
                with self._lock:
                    self._image_bytes[size_mb] = image_bytes
                return volume
            volume.remove()
            image_bytes += (target_blocks - usable_blocks) * _BLOCK_BYTES
        raise ScratchError(f"could not size a {size_mb} MB scratch filesystem")

    def _make(self, name: str, size_mb: int, image_bytes: int) -> ScratchVolume:
        image = self.folder / f"{name}.ext4"
        mountpoint = self.folder / name
        volume = ScratchVolume(image=image, mountpoint=mountpoint, size_mb=size_mb)
        try:
            with open(image, "xb") as file:
                file.truncate(image_bytes)
            inodes = max(1024, size_mb * _MB // _BYTES_PER_INODE)
            _run(
                [
                    "mkfs.ext4", *_MKFS_OPTIONS, "-N", str(inodes),
                    "-E", f"lazy_itable_init=1,nodiscard,root_owner={self.uid}:{self.gid}",
                    str(image),
                ]
            )  # fmt: skip
            mountpoint.mkdir()
            _run(["mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(mountpoint)])
            _release_reserved_clusters(mountpoint)
            (mountpoint / "lost+found").rmdir()
            mountpoint.chmod(0o1777)
        except BaseException as exc:
            with contextlib.suppress(ScratchError):
                volume.remove()
            if isinstance(exc, OSError):
                raise ScratchError(f"could not make scratch volume {image}: {exc}") from exc
            raise
        return volume


def _release_reserved_clusters(mountpoint: Path) -> None:
    """ext4 keeps up to 2% back for delayed allocation, which nodelalloc does without."""
    device = os.stat(mountpoint).st_dev
    block_device = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve()
    setting = Path("/sys/fs/ext4") / block_device.name / "reserved_clusters"
    with contextlib.suppress(OSError):
        setting.write_text("0")


def _unmount(mountpoint: Path) -> None:
    if not os.path.ismount(mountpoint):
        return
    try:
        _run(["umount", str(mountpoint)])
    except ScratchError:
        # Busy (say, a process on the host has it open): detach it now; the kernel frees
        # the filesystem and its loop device once the last user lets go.
        _run(["umount", "--lazy", str(mountpoint)])


def _mounts_under(folder: Path) -> list[Path]:
    """Mount points below `folder`, deepest first."""
    prefix = str(folder.resolve()) + "/"
    mounts = []
    with contextlib.suppress(OSError):
        for line in _MOUNTINFO.read_text().splitlines():
            fields = line.split()
            if len(fields) > 4:
                path = _unescape_mount_path(fields[4])
                if path.startswith(prefix):
                    mounts.append(Path(path))
    return sorted(mounts, key=lambda p: len(p.parts), reverse=True)


def _unescape_mount_path(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    for escape, character in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(escape, character)
    return text


def _run(command: list[str]) -> None:
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=_COMMAND_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScratchError(f"{command[0]}: {exc}") from exc
    if completed.returncode != 0:
        raise ScratchError(
            f"{' '.join(command)} failed (exit {completed.returncode}): {completed.stderr.strip()}"
        )
