from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.tests.factories import make_function, make_user, signed_in_client
from functions.models import Function

pytestmark = pytest.mark.django_db


def delete_url(function: Function) -> str:
    return reverse("functions:delete", kwargs={"pk": function.pk})


def test_it_deletes_after_confirm_and_returns_to_the_list(user: User):
    function = make_function(user, "orders")

    response = signed_in_client(user).post(
        delete_url(function), {"confirm": "confirm"}, follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("functions:list")
    assert not Function.objects.filter(pk=function.pk).exists()
    assert "Successfully deleted function orders." in [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize("typed", ["", "Confirm", "delete", "orders"])
def test_it_refuses_without_the_confirmation_word(user: User, typed: str):
    function = make_function(user, "orders")

    response = signed_in_client(user).post(delete_url(function), {"confirm": typed}, follow=True)

    assert Function.objects.filter(pk=function.pk).exists()
    assert response.redirect_chain[-1][0] == reverse("functions:detail", kwargs={"pk": function.pk})
    assert "To confirm deletion, enter confirm in the text input field." in [
        str(m) for m in response.context["messages"]
    ]


def test_it_only_accepts_post(user: User):
    function = make_function(user)

    response = signed_in_client(user).get(delete_url(function))

    assert response.status_code == 405
    assert Function.objects.filter(pk=function.pk).exists()


def test_another_users_function_cannot_be_deleted(user: User, other_user: User):
    function = make_function(other_user, "theirs")

    response = signed_in_client(user).post(delete_url(function), {"confirm": "confirm"})

    assert response.status_code == 404
    assert Function.objects.filter(pk=function.pk).exists()


def test_staff_can_delete_any_function(other_user: User):
    function = make_function(other_user, "theirs")
    staff = make_user("operator", staff=True)

    signed_in_client(staff).post(delete_url(function), {"confirm": "confirm"})

    assert not Function.objects.filter(pk=function.pk).exists()
