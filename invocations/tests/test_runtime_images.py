"""Runtime images: built once per recipe, and what they hold."""

from __future__ import annotations

import dataclasses
import io
import textwrap
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from django.core.management import call_command

from functions.models import Runtime
from invocations.runtimes import PYTHON_3_11, RECIPE_HASH_LABEL, recipe_for
from invocations.runtimes.builder import debian_mirror
from invocations.sandboxes.base import SandboxError
from invocations.sandboxes.docker import docker_api


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.APIClient]:
    try:
        client = docker_api()
        client.ping()
    except (SandboxError, docker.errors.DockerException) as exc:
        pytest.fail(f"These tests need a running Docker engine: {exc}")
    call_command("build_runtimes", verbosity=0)
    yield client
    client.close()


def _run(client: docker.APIClient, command: list[str], *, read_only: bool = False) -> str:
    """Run `command` in the python3.11 image as the image's user; return its output."""
    container = client.create_container(
        PYTHON_3_11.image, command, host_config=client.create_host_config(read_only=read_only)
    )
    try:
        client.start(container["Id"])
        status = client.wait(container["Id"], timeout=60)
        output = client.logs(container["Id"]).decode()
    finally:
        client.remove_container(container["Id"], force=True)
    assert status["StatusCode"] == 0, output
    return output.strip()


def test_the_image_is_built_once_per_recipe(docker_client):
    image = docker_client.inspect_image(PYTHON_3_11.image)
    assert image["Config"]["Labels"][RECIPE_HASH_LABEL] == PYTHON_3_11.recipe_hash()

    output = io.StringIO()
    call_command("build_runtimes", stdout=output)

    assert "up to date" in output.getvalue() and "nothing to do" in output.getvalue()
    assert docker_client.inspect_image(PYTHON_3_11.image)["Id"] == image["Id"]


def test_the_image_starts_the_runtime_as_lambdas_user(docker_client):
    config = docker_client.inspect_image(PYTHON_3_11.image)["Config"]

    assert config["User"] == "993:990"
    assert config["WorkingDir"] == "/var/task"
    assert config["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert config["Cmd"] == ["/var/runtime/bootstrap"]
    assert not config.get("Env"), "the image adds nothing to a function's environment"


def test_the_image_imports_awslambdaric_as_uid_993(docker_client):
    output = _run(
        docker_client,
        ["python3", "-c", "import awslambdaric, os; print(os.getuid(), awslambdaric.__file__)"],
    )

    assert output == "993 /var/runtime/awslambdaric/__init__.py"


def test_the_images_root_is_not_writable(docker_client):
    script = textwrap.dedent(
        """
        import os
        for path in ["/", "/etc", "/usr/lib", "/var/runtime", "/var/task", "/tmp"]:
            try:
                with open(os.path.join(path, "probe"), "w"):
                    pass
                print(path, "writable")
            except OSError as exc:
                print(path, exc.strerror)
        """
    )

    as_user = _run(docker_client, ["python3", "-c", script]).splitlines()
    read_only = _run(docker_client, ["python3", "-c", script], read_only=True).splitlines()

    assert as_user == [
        "/ Permission denied",
        "/etc Permission denied",
        "/usr/lib Permission denied",
        "/var/runtime Permission denied",
        "/var/task Permission denied",
        "/tmp writable",
    ]
    assert all(line.endswith("Read-only file system") for line in read_only)


def test_the_image_leaves_out_documentation_and_package_indexes(docker_client):
    output = _run(
        docker_client,
        ["find", "/usr/share/man", "/usr/share/i18n", "/var/lib/apt/lists", "/var/cache/apt"],
    )

    assert output.splitlines() == [
        "/usr/share/man",
        "/usr/share/i18n",
        "/var/lib/apt/lists",
        "/var/cache/apt",
    ]


def test_every_function_runtime_has_a_recipe():
    for runtime in Runtime.values:
        assert recipe_for(runtime).image == f"stratus-runtime:{runtime}"


def test_the_recipe_hash_follows_the_recipe():
    more_packages = dataclasses.replace(
        PYTHON_3_11, debian_packages=(*PYTHON_3_11.debian_packages, "curl")
    )
    other_suite = dataclasses.replace(PYTHON_3_11, debian_suite="trixie")

    hashes = {recipe.recipe_hash() for recipe in (PYTHON_3_11, more_packages, other_suite)}

    assert PYTHON_3_11.recipe_hash() == PYTHON_3_11.recipe_hash()
    assert len(hashes) == 3


def test_the_debian_mirror_is_read_from_apt_sources_in_either_format(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        textwrap.dedent(
            """\
            Types: deb
            # a snapshot, commented out
            URIs: http://mirror.example/debian/
            Suites: bookworm bookworm-updates
            Components: main

            Types: deb
            URIs: http://mirror.example/debian-security
            Suites: bookworm-security
            Components: main
            """
        )
    )
    assert debian_mirror(suite="bookworm", apt_dir=tmp_path) == "http://mirror.example/debian"

    (tmp_path / "sources.list").write_text(
        "# local\n"
        "deb [signed-by=/usr/share/keyrings/x.gpg] https://repo.example/nodejs nodistro main\n"
        "deb http://ftp.example/debian bookworm main contrib\n"
    )
    assert debian_mirror(suite="bookworm", apt_dir=tmp_path) == "http://ftp.example/debian"
