from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.tests.factories import make_function, make_user, signed_in_client
from functions import services
from functions.models import Function

pytestmark = pytest.mark.django_db


def section_url(function: Function, section: str, *, edit: bool = False) -> str:
    url = reverse("functions:detail", kwargs={"pk": function.pk})
    return f"{url}?tab=configuration&section={section}" + ("&edit=1" if edit else "")


def save_url(function: Function, section: str) -> str:
    return reverse(f"functions:configuration_{section}", kwargs={"pk": function.pk})


def general_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "description": "Takes orders",
        "memory_size": "512",
        "ephemeral_storage": "1024",
        "timeout_minutes": "1",
        "timeout_seconds": "30",
    }
    data.update(overrides)
    return data


def flashes(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- general configuration ----------------------------------------------------------------


def test_general_shows_the_current_settings(user: User):
    function = make_function(user, memory_size=256, timeout=75)

    content = signed_in_client(user).get(section_url(function, "general")).content.decode()

    assert "256 MB" in content
    assert "512 MB" in content
    assert "1 min 15 sec" in content


def test_general_edit_form_is_filled_in(user: User):
    function = make_function(user, timeout=75)

    response = signed_in_client(user).get(section_url(function, "general", edit=True))

    form = response.context["general_form"]
    assert form.initial["timeout_minutes"] == 1
    assert form.initial["timeout_seconds"] == 15
    assert b'name="memory_size" value="128"' in response.content


def test_general_edits_persist(user: User):
    function = make_function(user)

    response = signed_in_client(user).post(
        save_url(function, "general"), general_data(), follow=True
    )

    function.refresh_from_db()
    assert (function.description, function.memory_size, function.ephemeral_storage) == (
        "Takes orders",
        512,
        1024,
    )
    assert function.timeout == 90
    assert response.redirect_chain[-1][0] == section_url(function, "general")
    assert "Successfully updated the function hello." in flashes(response)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"memory_size": "64"}, "memory_size", "Memory must be between 128 and 10240 MB."),
        ({"memory_size": "10241"}, "memory_size", "Memory must be between 128 and 10240 MB."),
        (
            {"ephemeral_storage": "100"},
            "ephemeral_storage",
            "Ephemeral storage must be between 512 and 10240 MB.",
        ),
        (
            {"timeout_minutes": "0", "timeout_seconds": "0"},
            "timeout_seconds",
            "Timeout must be between 1 and 900 seconds.",
        ),
        (
            {"timeout_minutes": "15", "timeout_seconds": "1"},
            "timeout_seconds",
            "Timeout must be between 1 and 900 seconds.",
        ),
        ({"memory_size": "lots"}, "memory_size", "Enter a whole number."),
    ],
)
def test_general_rejects_out_of_range_values_at_the_field(
    user: User, overrides: dict[str, str], field: str, message: str
):
    function = make_function(user)

    response = signed_in_client(user).post(save_url(function, "general"), general_data(**overrides))

    assert response.status_code == 400
    assert message in response.context["general_form"].errors[field]
    assert message in response.content.decode()
    function.refresh_from_db()
    assert (function.memory_size, function.timeout, function.description) == (128, 3, "")


# --- environment variables ----------------------------------------------------------------


def env_post(client, function: Function, pairs: list[tuple[str, str]], **extra: str):
    data = {"env_key": [k for k, _ in pairs], "env_value": [v for _, v in pairs], **extra}
    return client.post(save_url(function, "environment"), data, follow=True)


def test_environment_shows_the_variables(user: User):
    function = make_function(user, environment={"STAGE": "prod"})

    content = signed_in_client(user).get(section_url(function, "environment")).content.decode()

    assert "STAGE" in content
    assert "prod" in content
    assert 'Environment variables <span class="counter">(1)</span>' in content


def test_environment_edit_has_a_blank_row_to_fill_in(user: User):
    function = make_function(user, environment={"STAGE": "prod"})

    response = signed_in_client(user).get(section_url(function, "environment", edit=True))

    rows = response.context["environment_rows"]
    assert [(row.key, row.value) for row in rows] == [("STAGE", "prod"), ("", "")]


def test_environment_edits_replace_the_variables(user: User):
    function = make_function(user, environment={"OLD": "1"})
    client = signed_in_client(user)

    response = env_post(client, function, [("STAGE", "prod"), ("", ""), ("LOG_LEVEL", "debug")])

    function.refresh_from_db()
    assert function.environment == {"STAGE": "prod", "LOG_LEVEL": "debug"}
    assert "Successfully updated the function hello." in flashes(response)


def test_environment_can_be_emptied(user: User):
    function = make_function(user, environment={"OLD": "1"})

    env_post(signed_in_client(user), function, [("", "")])

    function.refresh_from_db()
    assert function.environment == {}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("1BAD", "'1BAD' is not a valid name"),
        ("A", "'A' is not a valid name"),
        ("HAS-DASH", "'HAS-DASH' is not a valid name"),
        ("AWS_REGION", "'AWS_REGION' is reserved"),
    ],
)
def test_bad_environment_names_show_at_their_row(user: User, key: str, message: str):
    function = make_function(user, environment={"KEEP": "me"})

    response = env_post(signed_in_client(user), function, [("GOOD", "1"), (key, "2")])

    assert response.status_code == 400
    rows = response.context["environment_rows"]
    assert rows[0].key == "GOOD" and rows[0].errors == []
    assert rows[1].key == key and any(message in error for error in rows[1].errors)
    function.refresh_from_db()
    assert function.environment == {"KEEP": "me"}


def test_a_value_without_a_key_is_an_error_at_its_row(user: User):
    function = make_function(user)

    response = env_post(signed_in_client(user), function, [("", "orphan")])

    assert response.context["environment_rows"][0].errors == ["Enter a key for this value."]
    function.refresh_from_db()
    assert function.environment == {}


def test_a_repeated_key_is_an_error(user: User):
    function = make_function(user)

    response = env_post(signed_in_client(user), function, [("STAGE", "a"), ("STAGE", "b")])

    assert response.context["environment_rows"][1].errors == [
        "The key STAGE is used more than once."
    ]


def test_oversized_environment_is_a_table_wide_error(user: User):
    function = make_function(user)

    response = env_post(signed_in_client(user), function, [("BIG", "x" * 5000)])

    assert response.status_code == 400
    assert any("4 KB" in error for error in response.context["environment_form"].errors)
    function.refresh_from_db()
    assert function.environment == {}


def test_add_row_without_javascript_keeps_the_typed_rows(user: User):
    function = make_function(user)

    response = env_post(
        signed_in_client(user), function, [("STAGE", "prod"), ("", "")], action="add-row"
    )

    assert response.status_code == 200
    rows = response.context["environment_rows"]
    assert [(row.key, row.value) for row in rows] == [("STAGE", "prod"), ("", ""), ("", "")]
    function.refresh_from_db()
    assert function.environment == {}


# --- execution role -----------------------------------------------------------------------


def test_role_section_shows_the_role_arn(user: User):
    function = make_function(user)

    content = signed_in_client(user).get(section_url(function, "role")).content.decode()

    assert f":role/service-role/{function.role.name}" in content


def test_the_role_can_be_changed_to_another_of_the_owners_roles(user: User):
    function = make_function(user)
    other_role = services.role_create(owner=user, name="shared-role", policy_templates=[])

    response = signed_in_client(user).post(
        save_url(function, "role"), {"role": other_role.pk}, follow=True
    )

    function.refresh_from_db()
    assert function.role == other_role
    assert response.redirect_chain[-1][0] == section_url(function, "role")


def test_another_users_role_is_not_a_choice(user: User, other_user: User):
    function = make_function(user)
    original_role = function.role
    foreign_role = make_function(other_user, "theirs").role

    response = signed_in_client(user).post(save_url(function, "role"), {"role": foreign_role.pk})

    assert response.status_code == 400
    assert response.context["role_form"].errors["role"]
    function.refresh_from_db()
    assert function.role == original_role


def test_staff_editing_offers_the_owners_roles(other_user: User):
    function = make_function(other_user, "theirs")
    staff = make_user("operator", staff=True)

    response = signed_in_client(staff).get(section_url(function, "role", edit=True))

    choices = list(response.context["role_form"].fields["role"].queryset)
    assert choices == [function.role]


# --- access -------------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["general", "environment", "role"])
def test_saving_another_users_function_is_not_found(user: User, other_user: User, section: str):
    function = make_function(other_user, "theirs")

    response = signed_in_client(user).post(save_url(function, section), general_data())

    assert response.status_code == 404


@pytest.mark.parametrize("section", ["general", "environment", "role"])
def test_saves_need_post(user: User, section: str):
    function = make_function(user)

    response = signed_in_client(user).get(save_url(function, section))

    assert response.status_code == 405
