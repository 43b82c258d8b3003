"""Runtime images: one container image per Lambda runtime, built from a recipe.

A recipe is a folder next to this module holding the files that go into the image, plus an
entry in RUNTIMES saying which Debian release and packages form its root filesystem and
which Python distributions go into /var/runtime. Adding a runtime is a new folder and a new
entry. The image is tagged `stratus-runtime:<runtime>` and labelled with a hash of the
recipe, so it is rebuilt only when the recipe changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_REPOSITORY = "stratus-runtime"
RECIPE_HASH_LABEL = "stratus.recipe-hash"
RUNTIME_LABEL = "stratus.runtime"
# Bump when the builder changes in a way that changes what an image contains.
BUILD_FORMAT = 1

#: Where a sandbox may mount a pipe that the runtime then writes its output to (the
#: bootstrap checks for it); otherwise the output goes to the container's stdout.
OUTPUT_PIPE_PATH = "/var/runtime/output"

LAMBDA_USER = "sbx_user1051"
LAMBDA_UID = 993
LAMBDA_GID = 990

_RECIPES_DIR = Path(__file__).resolve().parent


class UnknownRuntime(LookupError):
    """No recipe exists for the runtime identifier."""


@dataclass(frozen=True)
class RuntimeRecipe:
    """How to build the image of one runtime."""

    runtime: str
    #: The recipe folder, next to this module.
    folder: str
    debian_suite: str
    debian_packages: tuple[str, ...]
    #: Recipe file -> absolute path in the image (the mode of the file is kept).
    files: dict[str, str] = field(default_factory=dict)
    #: A pip requirements file in the recipe folder, installed into /var/runtime.
    python_requirements: str = ""
    #: The Python version of the image's interpreter, to select binary wheels.
    python_version: str = ""
    #: Locales compiled into the image (LANG is one of them).
    locales: tuple[str, ...] = ()
    #: How the image starts the runtime: ENTRYPOINT and CMD.
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    #: How the image starts a pre-warmed generic environment ("stem cell") instead of the
    #: runtime: a program that waits on the Runtime API for its assignment (see
    #: python3_11/stratus_stem.py). Empty: this runtime gets no stem cells.
    stem_command: tuple[str, ...] = ()
    #: The stem program's recipe file, for backends that run it without the image.
    stem_program: str = ""

    @property
    def has_stem(self) -> bool:
        return bool(self.stem_command)

    @property
    def recipe_dir(self) -> Path:
        return _RECIPES_DIR / self.folder

    @property
    def image(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.runtime}"

    def recipe_hash(self) -> str:
        """A digest of everything that decides the image's content."""
        document = {
            "format": BUILD_FORMAT,
            "runtime": self.runtime,
            "suite": self.debian_suite,
            "packages": sorted(self.debian_packages),
            "files": self.files,
            "python_version": self.python_version,
            "locales": self.locales,
            "entrypoint": self.entrypoint,
            "command": self.command,
            "stem_command": self.stem_command,
            "recipe": _folder_digest(self.recipe_dir),
            "user": [LAMBDA_USER, LAMBDA_UID, LAMBDA_GID],
        }
        encoded = json.dumps(document, sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()


def _folder_digest(folder: Path) -> dict[str, str]:
    """Content and executable bit of every file in the recipe folder."""
    digest = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        executable = "x" if path.stat().st_mode & 0o111 else "-"
        digest[path.relative_to(folder).as_posix()] = f"{executable}{content}"
    return digest


PYTHON_3_11 = RuntimeRecipe(
    runtime="python3.11",
    folder="python3_11",
    debian_suite="bookworm",
    # tini runs as PID 1: it reaps orphaned children and passes on how the runtime ended.
    debian_packages=("python3", "libstdc++6", "ca-certificates", "locales", "tini"),
    files={
        "bootstrap": "/var/runtime/bootstrap",
        "lambda-runtime.pth": "/usr/lib/python3/dist-packages/lambda-runtime.pth",
        "stem": "/var/runtime/stem",
        "stratus_stem.py": "/var/runtime/stratus_stem.py",
    },
    python_requirements="requirements.txt",
    python_version="3.11",
    locales=("en_US.UTF-8",),
    entrypoint=("/usr/bin/tini", "--"),
    command=("/var/runtime/bootstrap",),
    stem_command=("/var/runtime/stem",),
    stem_program="stratus_stem.py",
)

RUNTIMES: dict[str, RuntimeRecipe] = {recipe.runtime: recipe for recipe in (PYTHON_3_11,)}


def recipe_for(runtime: str) -> RuntimeRecipe:
    try:
        return RUNTIMES[runtime]
    except KeyError:
        raise UnknownRuntime(f"no runtime image recipe for {runtime!r}") from None


def image_for(runtime: str) -> str:
    return recipe_for(runtime).image


def has_stem(runtime: str) -> bool:
    """Whether the runtime's image can start pre-warmed generic environments."""
    recipe = RUNTIMES.get(runtime)
    return recipe is not None and recipe.has_stem
