from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.tests.factories import make_blueprint, make_function, signed_in_client
from functions import services
from functions.models import Function, Role

pytestmark = pytest.mark.django_db

CREATE_URL = reverse("functions:create")


def form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "mode": "scratch",
        "name": "my-function",
        "runtime": "python3.11",
        "architecture": "x86_64",
        "role_mode": "basic",
        "handler": "lambda_function.lambda_handler",
        "memory_size": "128",
        "timeout": "3",
    }
    data.update(overrides)
    return data


def package_files(function: Function) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(bytes(function.code.zip_bytes))) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_it_requires_sign_in(client):
    response = client.get(CREATE_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_form_defaults_to_author_from_scratch(user: User):
    response = signed_in_client(user).get(CREATE_URL)

    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="mode" value="scratch" checked' in content
    assert 'value="lambda_function.lambda_handler"' in content
    assert "Function name must be 1 to 64 characters" in content
    assert "hyphens (-), and underscores (_)" in content


def test_mode_blueprint_selects_the_blueprint_tile(user: User):
    make_blueprint()

    response = signed_in_client(user).get(CREATE_URL, {"mode": "blueprint"})

    content = response.content.decode()
    assert 'name="mode" value="blueprint" checked' in content
    assert 'name="blueprint" value="echo-python"' in content


def test_the_blueprints_page_is_the_create_page_in_blueprint_mode(user: User):
    make_blueprint()

    response = signed_in_client(user).get(reverse("functions:blueprints"))

    assert response.status_code == 200
    assert 'name="mode" value="blueprint" checked' in response.content.decode()


def test_htmx_blueprint_search_returns_only_the_matching_cards(user: User):
    make_blueprint("echo-python", title="Echo", tags=["starter"])
    make_blueprint("queue-python", title="Queue consumer", tags=["sqs"])

    response = signed_in_client(user).get(
        reverse("functions:blueprints"),
        {"q": "sqs", "blueprint": "queue-python"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="blueprint-results",
    )

    content = response.content.decode()
    assert "<html" not in content
    assert "Queue consumer" in content
    assert "Echo" not in content
    assert 'value="queue-python" checked' in content


def test_it_creates_a_function_from_scratch_with_the_default_code(user: User):
    client = signed_in_client(user)

    response = client.post(CREATE_URL, form_data(architecture="arm64"), follow=True)

    function = Function.objects.get(owner=user, name="my-function")
    assert response.redirect_chain[-1][0] == reverse("functions:detail", kwargs={"pk": function.pk})
    assert function.architecture == "arm64"
    assert function.handler == "lambda_function.lambda_handler"
    assert package_files(function) == {"lambda_function.py": services.DEFAULT_PYTHON_CODE}
    assert function.role.name.startswith("my-function-role-")
    assert function.role.policy_templates == ["basic-execution"]
    assert (
        "Successfully created the function my-function. You can now change its code and "
        'configuration. To invoke your function with a test event, choose "Test".'
    ) in [str(m) for m in response.context["messages"]]


def test_it_creates_a_function_from_a_blueprint(user: User):
    blueprint = make_blueprint()

    signed_in_client(user).post(
        CREATE_URL,
        form_data(mode="blueprint", blueprint="echo-python", handler="ignored.handler"),
    )

    function = Function.objects.get(owner=user, name="my-function")
    assert function.blueprint == "echo-python"
    assert function.handler == blueprint.handler
    assert package_files(function) == blueprint.files


def test_blueprint_mode_needs_a_blueprint(user: User):
    make_blueprint()

    response = signed_in_client(user).post(CREATE_URL, form_data(mode="blueprint"))

    assert response.status_code == 400
    assert "Choose a blueprint." in response.content.decode()
    assert not Function.objects.exists()


def test_it_uses_an_existing_role(user: User):
    existing = make_function(user, "first").role

    signed_in_client(user).post(
        CREATE_URL, form_data(role_mode="existing", existing_role=existing.pk)
    )

    assert Function.objects.get(name="my-function").role == existing
    assert Role.objects.filter(owner=user).count() == 1


def test_it_does_not_offer_other_users_roles(user: User, other_user: User):
    theirs = make_function(other_user, "theirs").role

    response = signed_in_client(user).post(
        CREATE_URL, form_data(role_mode="existing", existing_role=theirs.pk)
    )

    assert response.status_code == 400
    assert response.context["form"].errors["existing_role"]
    assert not Function.objects.filter(owner=user).exists()


def test_it_creates_a_role_from_policy_templates(user: User):
    signed_in_client(user).post(
        CREATE_URL,
        form_data(
            role_mode="templates",
            role_name="orders-role",
            policy_templates=["sqs-poller", "sns-publish"],
        ),
    )

    role = Function.objects.get(name="my-function").role
    assert role.name == "orders-role"
    assert role.policy_templates == ["sqs-poller", "sns-publish"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "has spaces"}, "name", "letters, numbers, hyphens, or underscores"),
        ({"name": ""}, "name", "Function name is required."),
        ({"name": "x" * 65}, "name", "64 characters or fewer"),
        ({"memory_size": "64"}, "memory_size", "Memory must be between 128 and 10240 MB."),
        ({"memory_size": "20000"}, "memory_size", "Memory must be between 128 and 10240 MB."),
        ({"timeout": "901"}, "timeout", "Timeout must be between 1 and 900 seconds."),
        ({"handler": "has space"}, "handler", "Handler must be"),
    ],
)
def test_invalid_input_shows_at_the_field_and_creates_nothing(
    user: User, overrides: dict[str, str], field: str, message: str
):
    response = signed_in_client(user).post(CREATE_URL, form_data(**overrides))

    assert response.status_code == 400
    errors = response.context["form"].errors[field]
    assert any(message in error for error in errors)
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Function.objects.exists()
    assert not Role.objects.exists()


def test_a_duplicate_name_is_refused_at_the_name_field(user: User):
    make_function(user, "my-function")

    response = signed_in_client(user).post(CREATE_URL, form_data())

    assert response.status_code == 400
    assert response.context["form"].errors["name"] == [
        "A function named my-function already exists."
    ]
    assert Function.objects.count() == 1
    assert Role.objects.count() == 1


def test_another_users_function_name_is_free(user: User, other_user: User):
    make_function(other_user, "my-function")

    response = signed_in_client(user).post(CREATE_URL, form_data())

    assert response.status_code == 302
    assert Function.objects.filter(name="my-function").count() == 2


def test_a_failed_function_leaves_no_role_from_policy_templates(user: User):
    response = signed_in_client(user).post(
        CREATE_URL,
        form_data(name="bad name", role_mode="templates", role_name="orders-role"),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert not Role.objects.exists()


def test_policy_template_mode_needs_a_role_name(user: User):
    response = signed_in_client(user).post(CREATE_URL, form_data(role_mode="templates"))

    assert response.context["form"].errors["role_name"] == ["Enter a name for the new role."]
    assert not Function.objects.exists()
