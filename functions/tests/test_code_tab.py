from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from functions import code_tab, packaging, services
from functions.models import Function

HANDLER_CODE = "def lambda_handler(event, context):\n    return event\n"
FILES = {"lambda_function.py": HANDLER_CODE, "lib/helpers.py": "VALUE = 1\n"}


def make_function(
    owner: User, name: str = "hello", files: dict[str, str] | None = None
) -> Function:
    return services.function_create(owner=owner, name=name, role=None, files=files or FILES)


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()


def unzip(zip_bytes: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def deploy_url(function: Function) -> str:
    return reverse("code:deploy", kwargs={"pk": function.pk})


def post_json(client: Client, url: str, payload: object) -> Any:
    return client.post(url, data=json.dumps(payload), content_type="application/json")


@pytest.fixture
def function(user: User) -> Function:
    return make_function(user)


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


# ---------------------------------------------------------------- provider and page


@pytest.mark.django_db
def test_provider_gives_the_files_of_a_small_package(rf, user, function):
    context = code_tab.code_tab_context(rf.get("/"), function)

    assert context["files"] == FILES
    assert context["code_editable"] is True
    assert context["code_handler_file"] == "lambda_function.py"
    assert context["code_properties"]["code_sha256"] == function.code_sha256
    assert context["code_properties"]["code_size"] == function.code_size


@pytest.mark.django_db
def test_provider_marks_a_package_over_3_mb_not_editable(rf, user):
    big = make_function(
        user, name="big", files={**FILES, "data.txt": "x" * (packaging.EDITOR_MAX_BYTES + 1)}
    )

    context = code_tab.code_tab_context(rf.get("/"), big)

    assert context["files"] is None
    assert context["code_editable"] is False
    assert context["code_too_large_message"] == (
        'The deployment package of your Lambda function "big" is too large to enable inline '
        "code editing. However, you can still invoke your function."
    )


@pytest.mark.django_db
def test_code_tab_page_embeds_the_files_as_json(signed_in, function):
    response = signed_in.get(reverse("functions:detail", kwargs={"pk": function.pk}) + "?tab=code")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<script id="code-files" type="application/json">' in html
    assert "lib/helpers.py" in html
    assert reverse("code:deploy", kwargs={"pk": function.pk}) in html
    assert "Changes not deployed" in html
    assert function.code_sha256 in html


@pytest.mark.django_db
def test_code_tab_page_shows_lambdas_message_for_a_large_package(signed_in, user):
    big = make_function(
        user, name="big", files={"data.txt": "x" * (packaging.EDITOR_MAX_BYTES + 1)}
    )

    response = signed_in.get(reverse("functions:detail", kwargs={"pk": big.pk}) + "?tab=code")

    html = response.content.decode()
    assert "too large to enable inline code editing" in html
    assert 'id="code-files"' not in html
    assert "Upload a .zip file" in html


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("lambda_function.lambda_handler", "lambda_function.py"),
        ("src/app.main", "src/app.py"),
        ("pkg.module.handler", "pkg/module.py"),
        ("nodot", ""),
    ],
)
def test_handler_file(handler, expected):
    assert code_tab.handler_file(handler) == expected


# ---------------------------------------------------------------- deploy


@pytest.mark.django_db
def test_deploy_stores_a_new_package_of_exactly_the_files(signed_in, function):
    files = {
        "lambda_function.py": HANDLER_CODE.replace("event", "{'changed': event}", 1),
        "lib/helpers.py": "VALUE = 2\n",
        "lib/new.py": "",
    }

    response = post_json(signed_in, deploy_url(function), {"files": files})

    assert response.status_code == 200
    before_sha = function.code_sha256
    function.refresh_from_db()
    stored = bytes(function.code.zip_bytes)
    assert function.code_sha256 != before_sha
    assert function.code_sha256 == base64.b64encode(hashlib.sha256(stored).digest()).decode()
    assert function.code_size == len(stored)
    assert unzip(stored) == files
    body = response.json()
    assert body["message"] == "Successfully updated the function hello."
    assert body["code_sha256"] == function.code_sha256
    assert body["code_size"] == function.code_size
    assert body["last_modified"] == function.last_modified.isoformat()


@pytest.mark.django_db
def test_deploy_rejects_a_path_outside_the_package(signed_in, function):
    before = (function.code_id, function.code_sha256, function.code_size, function.last_modified)

    response = post_json(signed_in, deploy_url(function), {"files": {"../x.py": "print(1)\n"}})

    assert response.status_code == 400
    assert "'../x.py' is not a valid file path" in response.json()["message"]
    function.refresh_from_db()
    assert (
        function.code_id,
        function.code_sha256,
        function.code_size,
        function.last_modified,
    ) == before


@pytest.mark.django_db
def test_deploy_rejects_an_empty_package(signed_in, function):
    response = post_json(signed_in, deploy_url(function), {"files": {}})

    assert response.status_code == 400
    assert response.json()["message"] == "A deployment package needs at least one file."


@pytest.mark.django_db
def test_deploy_rejects_malformed_json(signed_in, function):
    response = signed_in.post(
        deploy_url(function), data="{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["message"] == "The request body is not valid JSON."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], 'Expected a JSON object of the form {"files": {"path": "text"}}.'),
        ({"files": ["a.py"]}, 'Expected a JSON object of the form {"files": {"path": "text"}}.'),
        ({"files": {"a.py": 1}}, "The content of 'a.py' must be a string."),
    ],
)
def test_deploy_rejects_the_wrong_shape(signed_in, function, payload, message):
    response = post_json(signed_in, deploy_url(function), payload)

    assert response.status_code == 400
    assert response.json()["message"] == message


@pytest.mark.django_db
def test_deploy_over_the_request_size_limit_says_so(signed_in, function, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    response = post_json(signed_in, deploy_url(function), {"files": {"a.py": "x" * 200}})

    assert response.status_code == 413
    assert "too large to deploy from the editor" in response.json()["message"]


@pytest.mark.django_db
def test_deploy_refuses_to_overwrite_code_changed_since_it_was_opened(signed_in, function):
    opened_sha = function.code_sha256
    services.function_deploy_code(function=function, files={"lambda_function.py": "# other\n"})
    function.refresh_from_db()

    response = post_json(
        signed_in,
        deploy_url(function),
        {"files": {"lambda_function.py": "# mine\n"}, "base_code_sha256": opened_sha},
    )

    assert response.status_code == 409
    assert "changed elsewhere" in response.json()["message"]
    assert response.json()["code_sha256"] == function.code_sha256
    function.refresh_from_db()
    assert unzip(bytes(function.code.zip_bytes)) == {"lambda_function.py": "# other\n"}

    again = post_json(
        signed_in,
        deploy_url(function),
        {"files": {"lambda_function.py": "# mine\n"}, "base_code_sha256": function.code_sha256},
    )
    assert again.status_code == 200


@pytest.mark.django_db
def test_deploy_of_another_users_function_is_404(client, other_user, function):
    client.force_login(other_user)

    response = post_json(client, deploy_url(function), {"files": {"a.py": "x = 1\n"}})

    assert response.status_code == 404
    sha = function.code_sha256
    function.refresh_from_db()
    assert function.code_sha256 == sha


@pytest.mark.django_db
def test_deploy_needs_post(signed_in, function):
    assert signed_in.get(deploy_url(function)).status_code == 405


@pytest.mark.django_db
def test_deploy_needs_the_csrf_token(user, function):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = post_json(client, deploy_url(function), {"files": {"a.py": "x = 1\n"}})

    assert response.status_code == 403


# ---------------------------------------------------------------- .zip upload


def upload(client: Client, function: Function, content: bytes, name: str = "code.zip"):
    return client.post(
        reverse("code:upload", kwargs={"pk": function.pk}),
        {"zip_file": SimpleUploadedFile(name, content, content_type="application/zip")},
    )


@pytest.mark.django_db
def test_upload_replaces_the_package(signed_in, function):
    zip_bytes = zip_of({"app.py": "def handler(event, context):\n    return 1\n"})

    response = upload(signed_in, function, zip_bytes)

    detail = reverse("functions:detail", kwargs={"pk": function.pk})
    assert response.status_code == 302
    assert response["Location"] == f"{detail}?tab=code"
    function.refresh_from_db()
    assert bytes(function.code.zip_bytes) == zip_bytes
    assert function.code_sha256 == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert function.code_size == len(zip_bytes)
    page = signed_in.get(response["Location"]).content.decode()
    assert "Successfully updated the function hello." in page


@pytest.mark.django_db
def test_upload_rejects_a_file_that_is_not_a_zip(signed_in, function):
    sha = function.code_sha256

    response = upload(signed_in, function, b"this is not a zip", name="code.zip")

    assert response.status_code == 400
    html = response.content.decode()
    assert "Could not unzip the uploaded file: it is not a ZIP." in html
    assert 'id="code-upload-modal" aria-labelledby="code-upload-title" data-open-on-load' in html
    function.refresh_from_db()
    assert function.code_sha256 == sha


@pytest.mark.django_db
def test_upload_rejects_a_zip_over_the_limit(signed_in, function, monkeypatch):
    monkeypatch.setattr(code_tab, "UPLOAD_MAX_BYTES", 10)
    sha = function.code_sha256

    response = upload(signed_in, function, zip_of({"a.py": "x = 1\n"}))

    assert response.status_code == 400
    assert "direct uploads are limited to" in response.content.decode()
    function.refresh_from_db()
    assert function.code_sha256 == sha


@pytest.mark.django_db
def test_upload_without_a_file_is_rejected(signed_in, function):
    response = signed_in.post(reverse("code:upload", kwargs={"pk": function.pk}), {})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


@pytest.mark.django_db
def test_upload_to_another_users_function_is_404(client, other_user, function):
    client.force_login(other_user)

    assert upload(client, function, zip_of({"a.py": ""})).status_code == 404


# ---------------------------------------------------------------- runtime settings


def runtime_url(function: Function) -> str:
    return reverse("code:runtime", kwargs={"pk": function.pk})


@pytest.mark.django_db
def test_runtime_settings_change_the_handler(signed_in, function):
    response = signed_in.post(
        runtime_url(function), {"runtime": "python3.11", "handler": "lib/helpers.main"}
    )

    assert response.status_code == 302
    assert response["Location"].endswith("?tab=code")
    function.refresh_from_db()
    assert function.handler == "lib/helpers.main"
    page = signed_in.get(response["Location"]).content.decode()
    assert "Successfully updated the function hello." in page
    assert "lib/helpers.main" in page


@pytest.mark.django_db
def test_runtime_settings_show_the_services_message_at_the_handler(signed_in, function):
    response = signed_in.post(
        runtime_url(function), {"runtime": "python3.11", "handler": "bad handler"}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "Handler must be 1 to 128 characters with no spaces" in html
    assert 'value="bad handler"' in html
    assert "data-open-on-load" in html
    function.refresh_from_db()
    assert function.handler == "lambda_function.lambda_handler"


@pytest.mark.django_db
def test_runtime_settings_reject_an_unknown_runtime(signed_in, function):
    response = signed_in.post(
        runtime_url(function), {"runtime": "python2.7", "handler": function.handler}
    )

    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()
    function.refresh_from_db()
    assert function.runtime == "python3.11"


@pytest.mark.django_db
def test_runtime_settings_need_post_and_ownership(client, signed_in, other_user, function):
    assert signed_in.get(runtime_url(function)).status_code == 405
    client.force_login(other_user)
    response = client.post(runtime_url(function), {"runtime": "python3.11", "handler": "a.b"})
    assert response.status_code == 404
