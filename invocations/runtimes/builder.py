"""Builds runtime images without a container registry.

The root filesystem comes from Debian packages (debootstrap, from the mirror apt already
uses), the runtime's Python distributions go into /var/runtime, the recipe's files are laid
over it, and the result is loaded with Docker's import API. Needs root (debootstrap does).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from invocations.runtimes import (
    IMAGE_REPOSITORY,
    LAMBDA_GID,
    LAMBDA_UID,
    LAMBDA_USER,
    RECIPE_HASH_LABEL,
    RUNTIME_LABEL,
    RuntimeRecipe,
)

APT_DIR = Path("/etc/apt")
# Left out of images: documentation, caches and package indexes nothing inside reads.
_STRIPPED = (
    "usr/share/man",
    "usr/share/info",
    "usr/share/i18n",
    "usr/share/lintian",
    "usr/share/linda",
    "usr/share/locale",
    "var/cache/apt",
    "var/cache/debconf",
    "var/lib/apt/lists",
    "var/log",
)
_TAR_CHUNK = 1024 * 1024
_PIP_PLATFORMS = {"x86_64": "manylinux_2_36_x86_64", "aarch64": "manylinux_2_36_aarch64"}
_REQUIREMENT_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")

Log = Callable[[str], None]


class RuntimeBuildError(Exception):
    """A runtime image could not be built."""


@dataclass(frozen=True)
class BuildResult:
    image: str
    recipe_hash: str
    built: bool
    seconds: float
    size_bytes: int


def runtime_image_current(*, client: docker.APIClient, recipe: RuntimeRecipe) -> bool:
    """Whether the image exists and was built from this exact recipe."""
    image = _inspect_image(client, recipe.image)
    if image is None:
        return False
    labels = image.get("Config", {}).get("Labels") or {}
    return bool(labels.get(RECIPE_HASH_LABEL) == recipe.recipe_hash())


def runtime_image_build(
    *,
    client: docker.APIClient,
    recipe: RuntimeRecipe,
    force: bool = False,
    mirror: str = "",
    log: Log = print,
) -> BuildResult:
    """Build the runtime's image unless one from the same recipe exists (or `force`)."""
    started = time.perf_counter()
    recipe_hash = recipe.recipe_hash()
    with _build_lock(recipe):
        if not force and runtime_image_current(client=client, recipe=recipe):
            return BuildResult(
                image=recipe.image,
                recipe_hash=recipe_hash,
                built=False,
                seconds=time.perf_counter() - started,
                size_bytes=_image_size(client, recipe.image),
            )
        _check_build_host()
        mirror = mirror or debian_mirror(suite=recipe.debian_suite)
        previous_id = _image_id(client, recipe.image)
        with tempfile.TemporaryDirectory(prefix="stratus-runtime-") as work_dir:
            rootfs = Path(work_dir) / "rootfs"
            bootstrap_title = f"debootstrap {recipe.debian_suite} from {mirror}"
            _step(log, bootstrap_title, _debootstrap, recipe, rootfs, mirror)
            _step(log, "Python distributions into /var/runtime", _install_python, recipe, rootfs)
            _step(log, "recipe files, user and mount points", _lay_out, recipe, rootfs)
            _step(log, "locales", _compile_locales, recipe, rootfs)
            _step(log, "removing documentation and caches", _strip, rootfs)
            _step(log, f"importing {recipe.image}", _import, client, recipe, rootfs, recipe_hash)
        new_id = _image_id(client, recipe.image)
        if previous_id and previous_id != new_id:
            # The old image lost its tag; drop it unless a container still uses it.
            with contextlib.suppress(docker.errors.APIError):
                client.remove_image(previous_id)
        return BuildResult(
            image=recipe.image,
            recipe_hash=recipe_hash,
            built=True,
            seconds=time.perf_counter() - started,
            size_bytes=_image_size(client, recipe.image),
        )


def debian_mirror(*, suite: str, apt_dir: Path = APT_DIR) -> str:
    """The Debian mirror apt is configured with, preferring one that lists `suite`."""
    entries = list(_apt_entries(apt_dir))
    for uri, suites, components in entries:
        if suite in suites and "main" in components:
            return uri
    for uri, suites, components in entries:
        usable = "main" in components and any(not s.endswith("-security") for s in suites)
        if usable and "debian" in uri:
            return uri
    raise RuntimeBuildError(
        f"no Debian mirror found in {apt_dir}/sources.list or {apt_dir}/sources.list.d; "
        "pass one with --mirror"
    )


def _apt_entries(apt_dir: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """(URI, suites, components) of every `deb` source, in apt's reading order."""
    one_line_files = [apt_dir / "sources.list"]
    one_line_files += sorted((apt_dir / "sources.list.d").glob("*.list"))
    for path in one_line_files:
        yield from _one_line_entries(path)
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        yield from _deb822_entries(path)


def _one_line_entries(path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    with contextlib.suppress(OSError):
        for raw in path.read_text().splitlines():
            line = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                yield line[1].rstrip("/"), [line[2]], line[3:]


def _deb822_entries(path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    try:
        text = path.read_text()
    except OSError:
        return
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        uris = fields.get("uris", "").split()
        if uris:
            yield (
                uris[0].rstrip("/"),
                fields.get("suites", "").split(),
                fields.get("components", "").split(),
            )


@contextlib.contextmanager
def _build_lock(recipe: RuntimeRecipe) -> Iterator[None]:
    """One build of a runtime at a time on this host (a second one then finds it current)."""
    lock_path = Path(tempfile.gettempdir()) / f"{IMAGE_REPOSITORY}-{recipe.runtime}.lock"
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _check_build_host() -> None:
    if os.geteuid() != 0:
        raise RuntimeBuildError("building runtime images needs root (debootstrap runs as root)")
    if shutil.which("debootstrap") is None:
        raise RuntimeBuildError(
            "debootstrap is not installed; on Debian: apt-get install debootstrap"
        )


def _step(log: Log, title: str, action: Callable[..., None], *args: object) -> None:
    log(f"  {title} ...")
    started = time.perf_counter()
    action(*args)
    log(f"  {title}: done in {time.perf_counter() - started:.1f} s")


def _run(command: list[str], what: str) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        tail = "\n".join(output[-20:])
        raise RuntimeBuildError(f"{what} failed (exit {completed.returncode}):\n{tail}")


def _debootstrap(recipe: RuntimeRecipe, rootfs: Path, mirror: str) -> None:
    command = ["debootstrap", "--variant=minbase"]
    if recipe.debian_packages:
        command.append(f"--include={','.join(recipe.debian_packages)}")
    command += [recipe.debian_suite, str(rootfs), mirror]
    _run(command, "debootstrap")


def _install_python(recipe: RuntimeRecipe, rootfs: Path) -> None:
    if not recipe.python_requirements:
        return
    target = rootfs / "var" / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    requirements = recipe.recipe_dir / recipe.python_requirements
    pins = _pinned_requirements(requirements)
    if _host_has(pins, recipe.python_version):
        _copy_host_distributions(pins, target)
    else:
        _pip_install(requirements, recipe.python_version, target)
    shutil.rmtree(target / "bin", ignore_errors=True)
    # Byte-code compiled by the image's own interpreter: its root is read-only at run time.
    _run(
        ["chroot", str(rootfs), "/usr/bin/python3", "-m", "compileall", "-q", "/var/runtime"],
        "compiling /var/runtime",
    )


def _pinned_requirements(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        match = _REQUIREMENT_RE.match(line)
        if match:
            pins[match[1]] = match[2]
    return pins


def _host_has(pins: dict[str, str], python_version: str) -> bool:
    """Whether this interpreter holds exactly the pinned distributions, built for the image.

    Then they are copied as installed, which works without any package index. The image
    is built for the host's architecture, so only the interpreter version has to match.
    """
    if sys.implementation.name != "cpython":
        return False
    if f"{sys.version_info.major}.{sys.version_info.minor}" != python_version:
        return False
    for name, version in pins.items():
        try:
            if importlib.metadata.version(name) != version:
                return False
        except importlib.metadata.PackageNotFoundError:
            return False
    return True


def _copy_host_distributions(pins: dict[str, str], target: Path) -> None:
    for name in pins:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue
            source = Path(str(distribution.locate_file(file)))
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _pip_install(requirements: Path, python_version: str, target: Path) -> None:
    wheel_platform = _PIP_PLATFORMS.get(platform.machine())
    if wheel_platform is None:
        raise RuntimeBuildError(f"no wheel platform known for {platform.machine()}")
    _run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--target", str(target), "--only-binary", ":all:",
            "--python-version", python_version, "--implementation", "cp",
            "--platform", wheel_platform, "-r", str(requirements),
        ],
        "pip install",
    )  # fmt: skip


def _lay_out(recipe: RuntimeRecipe, rootfs: Path) -> None:
    for name, image_path in recipe.files.items():
        destination = rootfs / image_path.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(recipe.recipe_dir / name, destination)
        destination.chmod(0o755 if os.access(recipe.recipe_dir / name, os.X_OK) else 0o644)
    with open(rootfs / "etc" / "passwd", "a") as passwd:
        passwd.write(f"{LAMBDA_USER}:x:{LAMBDA_UID}:{LAMBDA_GID}::/tmp:/usr/sbin/nologin\n")
    with open(rootfs / "etc" / "group", "a") as group:
        group.write(f"{LAMBDA_USER}:x:{LAMBDA_GID}:\n")
    for mount_point in ("var/task", "opt"):
        (rootfs / mount_point).mkdir(parents=True, exist_ok=True)
        (rootfs / mount_point).chmod(0o755)
    (rootfs / "tmp").mkdir(exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)


def _compile_locales(recipe: RuntimeRecipe, rootfs: Path) -> None:
    for locale in recipe.locales:
        language, _, charset = locale.partition(".")
        _run(
            ["chroot", str(rootfs), "localedef", "-i", language, "-f", charset, locale],
            f"compiling locale {locale}",
        )


def _strip(rootfs: Path) -> None:
    for relative in _STRIPPED:
        folder = rootfs / relative
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    # Documentation goes, but each package's copyright notice stays.
    doc_root = rootfs / "usr" / "share" / "doc"
    if doc_root.is_dir():
        for path in sorted(doc_root.rglob("*"), reverse=True):
            if path.is_dir() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.rmdir()
            elif path.name != "copyright":
                path.unlink()


def _import(
    client: docker.APIClient, recipe: RuntimeRecipe, rootfs: Path, recipe_hash: str
) -> None:
    changes = [
        f"LABEL {RUNTIME_LABEL}={recipe.runtime} {RECIPE_HASH_LABEL}={recipe_hash}",
        "WORKDIR /var/task",
        f"USER {LAMBDA_UID}:{LAMBDA_GID}",
    ]
    if recipe.entrypoint:
        changes.append(f"ENTRYPOINT {_json_list(recipe.entrypoint)}")
    if recipe.command:
        changes.append(f"CMD {_json_list(recipe.command)}")
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tar.stdout is not None
    output = tar.stdout
    try:
        client.import_image(
            src=iter(lambda: output.read(_TAR_CHUNK), b""),
            repository=IMAGE_REPOSITORY,
            tag=recipe.runtime,
            changes=changes,
            stream_src=True,
        )
    finally:
        output.close()
        _, errors = tar.communicate()
    if tar.returncode != 0:
        raise RuntimeBuildError(f"tar failed: {errors.decode(errors='replace')[-2000:]}")


def _json_list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items))


def _inspect_image(client: docker.APIClient, image: str) -> dict[str, Any] | None:
    try:
        details: dict[str, Any] = client.inspect_image(image)  # type: ignore[no-untyped-call]
    except docker.errors.ImageNotFound:
        return None
    return details


def _image_id(client: docker.APIClient, image: str) -> str:
    details = _inspect_image(client, image)
    return str(details["Id"]) if details else ""


def _image_size(client: docker.APIClient, image: str) -> int:
    details = _inspect_image(client, image)
    return int(details["Size"]) if details else 0
