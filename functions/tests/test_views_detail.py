from __future__ import annotations

import sys
import types

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.selectors import account_for_user
from console.tests.factories import make_function, make_user, signed_in_client
from functions.views import detail

pytestmark = pytest.mark.django_db


def detail_url(pk: int, **params: str) -> str:
    url = reverse("functions:detail", kwargs={"pk": pk})
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}?{query}" if query else url


def test_it_requires_sign_in(client, user: User):
    function = make_function(user)

    response = client.get(detail_url(function.pk))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_another_users_function_is_not_found(user: User, other_user: User):
    function = make_function(other_user, "theirs")

    response = signed_in_client(user).get(detail_url(function.pk, tab="configuration"))

    assert response.status_code == 404


def test_staff_can_open_any_function(other_user: User):
    function = make_function(other_user, "theirs")
    staff = make_user("operator", staff=True)

    response = signed_in_client(staff).get(detail_url(function.pk, tab="configuration"))

    assert response.status_code == 200


def test_the_overview_shows_the_function_arn(user: User, settings):
    settings.STRATUS_REGION = "eu-west-3"
    function = make_function(user, "orders", description="Takes orders")
    account_id = account_for_user(user).account_id

    content = signed_in_client(user).get(detail_url(function.pk)).content.decode()

    arn = f"arn:aws:lambda:eu-west-3:{account_id}:function:orders"
    assert f'data-copy="{arn}"' in content
    assert "Takes orders" in content
    assert "Function overview" in content


def test_the_arn_uses_the_owners_account_for_staff(other_user: User):
    function = make_function(other_user, "theirs")
    staff = make_user("operator", staff=True)

    response = signed_in_client(staff).get(detail_url(function.pk))

    assert account_for_user(other_user).account_id in response.context["function_arn"]


def test_the_tabs_mark_the_selected_one(user: User):
    function = make_function(user)

    content = signed_in_client(user).get(detail_url(function.pk, tab="configuration")).content

    text = content.decode()
    assert 'aria-selected="true" aria-current="page">Configuration</a>' in text
    assert 'aria-selected="false">Code</a>' in text


def test_an_unknown_tab_falls_back_to_code(user: User):
    function = make_function(user)

    response = signed_in_client(user).get(detail_url(function.pk, tab="nope"))

    assert response.context["tab"] == "code"


def test_a_tab_without_its_module_says_it_is_not_available(user: User, monkeypatch):
    function = make_function(user)
    tabs = [*detail.TABS]
    tabs[0] = ("code", "Code", "functions.no_such_tab_module.context", "functions/none.html")
    monkeypatch.setattr(detail, "TABS", tabs)

    response = signed_in_client(user).get(detail_url(function.pk, tab="code"))

    assert response.status_code == 200
    assert b"This tab is not available yet" in response.content


def test_a_tab_provider_fills_the_tab_template(user: User, monkeypatch):
    function = make_function(user)
    module = types.ModuleType("functions.tests.fake_tab")
    module.fake_context = lambda request, fn: {  # type: ignore[attr-defined]
        "editing": False,
        "role_arn": f"arn:example:{fn.name}",
    }
    monkeypatch.setitem(sys.modules, "functions.tests.fake_tab", module)
    tabs = [*detail.TABS]
    tabs[0] = (
        "code",
        "Code",
        "functions.tests.fake_tab.fake_context",
        "functions/config_role.html",
    )
    monkeypatch.setattr(detail, "TABS", tabs)

    response = signed_in_client(user).get(detail_url(function.pk, tab="code"))

    assert response.context["tab_template"] == "functions/config_role.html"
    assert b"arn:example:hello" in response.content


def test_a_broken_import_inside_a_tab_module_is_not_hidden(monkeypatch):
    def broken_import(name: str) -> None:
        raise ModuleNotFoundError("No module named 'missing_dependency'", name="missing_dependency")

    monkeypatch.setattr(detail, "import_module", broken_import)

    with pytest.raises(ModuleNotFoundError):
        detail.load_provider("functions.code_tab.code_tab_context")


def test_the_delete_modal_asks_for_confirmation(user: User):
    function = make_function(user, "orders")

    content = signed_in_client(user).get(detail_url(function.pk)).content.decode()

    assert 'data-open-modal="delete-function-modal"' in content
    assert "Delete function orders?" in content
    assert 'data-confirm-text="confirm"' in content
    assert reverse("functions:delete", kwargs={"pk": function.pk}) in content
