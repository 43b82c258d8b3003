"""Publishing, listing and deleting versions through the services, and the Versions tab."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from console.tests.factories import make_function, signed_in_client
from functions.models import CodeArtifact, Function, FunctionVersion
from functions.selectors import function_version_get, function_version_list
from functions.services import (
    RevisionMismatch,
    function_delete,
    function_deploy_code,
    function_update_configuration,
    function_version_delete,
    function_version_publish,
)

pytestmark = pytest.mark.django_db


def deploy(function: Function, body: str) -> Function:
    return function_deploy_code(
        function=function,
        files={"lambda_function.py": f"def lambda_handler(event, context):\n    {body}\n"},
    )


def test_publishing_snapshots_code_and_configuration(user: User):
    function = make_function(user)
    function = function_update_configuration(
        function=function, memory_size=256, environment={"STAGE": "one"}
    )

    version = function_version_publish(function=function, description="first")

    assert version.version == 1
    assert version.description == "first"
    assert version.code_id == function.code_id
    assert version.code_sha256 == function.code_sha256
    assert version.memory_size == 256
    assert version.environment == {"STAGE": "one"}
    assert version.role_id == function.role_id
    assert str(version.revision_id) != str(function.revision_id)
    function = function_update_configuration(function=function, memory_size=512)
    assert FunctionVersion.objects.get(pk=version.pk).memory_size == 256


def test_unchanged_code_and_configuration_give_back_the_last_version(user: User):
    function = make_function(user)
    first = function_version_publish(function=function, description="first")

    again = function_version_publish(function=function, description="other words")

    assert again.pk == first.pk
    assert again.description == "first"
    deploy(function, "return 2")
    second = function_version_publish(function=function)
    assert second.version == 2
    function_update_configuration(function=function, timeout=10)
    assert function_version_publish(function=function).version == 3


def test_version_numbers_are_never_reused(user: User):
    function = make_function(user)
    function_version_publish(function=function)
    deploy(function, "return 2")
    second = function_version_publish(function=function)
    function_version_delete(version=second)

    deploy(function, "return 3")
    third = function_version_publish(function=function)

    assert third.version == 3
    assert [v.version for v in function_version_list(function=function)] == [1, 3]


def test_the_code_sha256_and_revision_preconditions(user: User):
    function = make_function(user)

    with pytest.raises(ValidationError, match="is different from current CodeSHA256"):
        function_version_publish(function=function, code_sha256="x" * 44)
    with pytest.raises(RevisionMismatch):
        function_version_publish(function=function, revision_id=str(uuid.uuid4()))

    version = function_version_publish(
        function=function,
        code_sha256=function.code_sha256,
        revision_id=str(function.revision_id),
    )
    assert version.version == 1


def test_a_description_longer_than_lambdas_limit_is_refused(user: User):
    function = make_function(user)

    with pytest.raises(ValidationError):
        function_version_publish(function=function, description="d" * 257)
    assert not FunctionVersion.objects.exists()


def test_packages_a_version_uses_survive_deploys(user: User):
    function = make_function(user)
    published = function_version_publish(function=function)
    unpublished_code = deploy(function, "return 2").code_id

    deploy(function, "return 3")

    assert CodeArtifact.objects.filter(pk=published.code_id).exists()
    assert not CodeArtifact.objects.filter(pk=unpublished_code).exists()


def test_deleting_a_version_deletes_its_package_once_unused(user: User):
    function = make_function(user)
    version = function_version_publish(function=function)
    deploy(function, "return 2")

    function_version_delete(version=version)

    assert not FunctionVersion.objects.exists()
    assert not CodeArtifact.objects.filter(pk=version.code_id).exists()
    assert Function.objects.filter(pk=function.pk).exists()


def test_deleting_the_function_deletes_its_versions_and_their_packages(user: User):
    function = make_function(user)
    version = function_version_publish(function=function)
    function = deploy(function, "return 2")

    function_delete(function=function)

    assert not FunctionVersion.objects.exists()
    assert not CodeArtifact.objects.filter(pk__in=[version.code_id, function.code_id]).exists()


def test_a_version_is_found_by_its_number_only(user: User):
    function = make_function(user)
    version = function_version_publish(function=function)

    assert function_version_get(function=function, version="1") == version
    assert function_version_get(function=function, version=1) == version
    for missing in ("2", "live", "$LATEST", "01x", "9" * 30):
        assert function_version_get(function=function, version=missing) is None


def versions_url(function: Function) -> str:
    return f"{reverse('functions:detail', args=[function.pk])}?tab=versions"


def test_the_versions_tab_lists_versions_newest_first(user: User):
    function = make_function(user)
    function_version_publish(function=function, description="first cut")
    deploy(function, "return 2")
    second = function_version_publish(function=function, description="second cut")

    response = signed_in_client(user).get(versions_url(function))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'aria-current="page"' in page and ">Versions<" in page
    assert page.index("second cut") < page.index("first cut")
    assert second.code_sha256 in page
    assert "Publish new version" in page
    assert 'id="version-publish-modal"' in page


def test_the_versions_tab_without_versions_says_so(user: User):
    function = make_function(user)

    response = signed_in_client(user).get(versions_url(function))

    assert "No versions" in response.content.decode()


def test_publishing_from_the_console(user: User):
    function = make_function(user)
    client = signed_in_client(user)
    url = reverse("functions:version_publish", args=[function.pk])

    first = client.post(url, {"description": "from the console"}, follow=True)
    again = client.post(url, {"description": "unchanged"}, follow=True)

    assert first.redirect_chain[-1][0] == versions_url(function)
    assert "Successfully published version 1" in first.content.decode()
    assert "no new version was published" in again.content.decode()
    assert [v.description for v in FunctionVersion.objects.all()] == ["from the console"]


def test_a_bad_description_reopens_the_form_with_the_error(user: User):
    function = make_function(user)

    response = signed_in_client(user).post(
        reverse("functions:version_publish", args=[function.pk]), {"description": "d" * 300}
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "data-open-on-load" in page
    assert 'aria-invalid="true"' in page
    assert not FunctionVersion.objects.exists()


def test_another_users_function_cannot_be_published(user: User, other_user: User):
    function = make_function(other_user, "theirs")

    response = signed_in_client(user).post(
        reverse("functions:version_publish", args=[function.pk]), {"description": ""}
    )

    assert response.status_code == 404
    assert not FunctionVersion.objects.exists()
