from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.tests.factories import make_function, make_user, signed_in_client

pytestmark = pytest.mark.django_db

LIST_URL = reverse("functions:list")


def test_it_requires_sign_in(client):
    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_lists_only_the_users_own_functions(user: User, other_user: User):
    make_function(user, "mine")
    make_function(other_user, "theirs")

    response = signed_in_client(user).get(LIST_URL)

    assert response.status_code == 200
    assert [f.name for f in response.context["functions"]] == ["mine"]
    assert b"theirs" not in response.content
    assert b">Owner<" not in response.content


def test_staff_see_every_function_with_its_owner(user: User, other_user: User):
    make_function(user, "mine")
    make_function(other_user, "theirs")
    staff = make_user("operator", staff=True)

    response = signed_in_client(staff).get(LIST_URL)

    assert [f.name for f in response.context["functions"]] == ["mine", "theirs"]
    assert b">Owner<" in response.content
    assert b"bob" in response.content


def test_it_shows_runtime_memory_size_and_last_modified(user: User):
    function = make_function(user, "sized", memory_size=256)

    content = signed_in_client(user).get(LIST_URL).content.decode()

    assert reverse("functions:detail", kwargs={"pk": function.pk}) in content
    assert "Python 3.11" in content
    assert ">256<" in content
    assert f"{function.code_size} byte" in content
    assert f'datetime="{function.last_modified.isoformat()}"' in content


def test_it_filters_by_name_without_javascript(user: User):
    make_function(user, "orders-api")
    make_function(user, "billing-worker")

    response = signed_in_client(user).get(LIST_URL, {"q": "ORDER"})

    assert [f.name for f in response.context["functions"]] == ["orders-api"]
    assert b"1 match" in response.content
    assert b"<html" in response.content


def test_htmx_filter_returns_only_the_table(user: User):
    make_function(user, "orders-api")
    make_function(user, "billing-worker")

    response = signed_in_client(user).get(
        LIST_URL, {"q": "billing"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="function-table"
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert 'id="function-table"' in content
    assert "billing-worker" in content
    assert "orders-api" not in content


def test_it_sorts_by_a_column(user: User):
    make_function(user, "small", memory_size=128)
    make_function(user, "large", memory_size=1024)

    response = signed_in_client(user).get(LIST_URL, {"sort": "-memory"})

    assert [f.name for f in response.context["functions"]] == ["large", "small"]
    assert b'aria-sort="descending"' in response.content


def test_an_unknown_sort_falls_back_to_name(user: User):
    make_function(user, "b-function")
    make_function(user, "a-function")

    response = signed_in_client(user).get(LIST_URL, {"sort": "password"})

    assert [f.name for f in response.context["functions"]] == ["a-function", "b-function"]


def test_it_shows_an_empty_state(user: User):
    response = signed_in_client(user).get(LIST_URL)

    assert b"No functions" in response.content
    assert reverse("functions:create").encode() in response.content


def test_a_filter_without_matches_offers_to_clear_it(user: User):
    make_function(user, "orders-api")

    response = signed_in_client(user).get(LIST_URL, {"q": "zzz"})

    assert b"No matches" in response.content
    assert b"Clear filter" in response.content
