"""Configuration -> Concurrency: the account's pool, reserving and unreserving, and
provisioned concurrency per version or alias, with the errors shown at their fields."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import reverse

from console.tests.factories import make_function, signed_in_client
from functions.alias_services import function_alias_create
from functions.models import Function, ProvisionedConcurrencyConfig
from functions.services import function_version_publish

pytestmark = pytest.mark.django_db


def page_url(function: Function, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"tab": "configuration", **params}.items())
    return f"{reverse('functions:detail', kwargs={'pk': function.pk})}?section=concurrency&{query}"


def reserved(function: Function, count: int) -> Function:
    Function.objects.filter(pk=function.pk).update(reserved_concurrency=count)
    function.refresh_from_db()
    return function


def flashes(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_section_shows_the_account_pool_and_the_reservation(user: User):
    function = make_function(user, "orders")
    reserved(make_function(user, "billing"), 150)

    content = signed_in_client(user).get(page_url(function)).content.decode()

    assert "Use unreserved account concurrency" in content
    assert "850 of 1000" in content
    assert "Provisioned concurrency configurations" in content
    assert "publish a version first" in content


def test_reserving_and_going_back_to_the_unreserved_pool(user: User):
    function = make_function(user, "orders")
    client = signed_in_client(user)
    url = reverse("functions:concurrency_reserve", kwargs={"pk": function.pk})

    response = client.post(url, {"mode": "reserve", "reserved": "40"}, follow=True)

    function.refresh_from_db()
    assert function.reserved_concurrency == 40
    assert "Successfully updated the concurrency of the function orders." in flashes(response)
    assert "Reserved: 40" in response.content.decode()
    assert "960 of 1000" in response.content.decode()

    client.post(url, {"mode": "unreserved", "reserved": "40"})
    function.refresh_from_db()
    assert function.reserved_concurrency is None


@override_settings(STRATUS_ACCOUNT_CONCURRENCY_LIMIT=300)
def test_reserving_too_much_or_nothing_is_refused_at_the_field(user: User):
    function = make_function(user, "orders")
    reserved(make_function(user, "billing"), 50)
    client = signed_in_client(user)
    url = reverse("functions:concurrency_reserve", kwargs={"pk": function.pk})

    too_much = client.post(url, {"mode": "reserve", "reserved": "151"})
    missing = client.post(url, {"mode": "reserve", "reserved": ""})
    negative = client.post(url, {"mode": "reserve", "reserved": "-1"})

    assert too_much.status_code == 400
    assert too_much.context["reserved_form"].errors["reserved"] == [
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    ]
    assert 'value="151"' in too_much.content.decode()
    assert "Between 0 and 150" in too_much.content.decode()
    assert missing.context["reserved_form"].errors["reserved"] == [
        "Enter the concurrency to reserve for this function."
    ]
    assert negative.context["reserved_form"].errors["reserved"] == [
        "Reserved concurrency must be 0 or more."
    ]
    function.refresh_from_db()
    assert function.reserved_concurrency is None


def test_the_reservation_is_read_only_on_a_version_page(user: User):
    function = make_function(user, "orders")
    function_version_publish(function=function)

    response = signed_in_client(user).get(page_url(function, qualifier="1", edit="1"))

    assert "reserved_form" not in response.context
    assert "edit it on $LATEST" in response.content.decode()


def test_adding_editing_and_deleting_provisioned_concurrency(user: User):
    function = make_function(user, "orders")
    function_version_publish(function=function)
    function_alias_create(function=function, name="live", function_version="1")
    client = signed_in_client(user)
    save = reverse("functions:provisioned_save", kwargs={"pk": function.pk})

    form_page = client.get(page_url(function, provisioned="add")).content.decode()
    assert '<option value="1">Version 1</option>' in form_page
    assert '<option value="live">Alias: live</option>' in form_page
    response = client.post(save, {"target": "live", "requested": "2"}, follow=True)

    config = ProvisionedConcurrencyConfig.objects.get(function=function)
    assert (config.qualifier, config.requested, config.status) == ("live", 2, "IN_PROGRESS")
    assert "Provisioned concurrency of live saved" in flashes(response)[0]
    assert "In progress" in response.content.decode()

    edit_page = client.get(page_url(function, provisioned="live"))
    assert edit_page.context["provisioned_form"].initial["requested"] == 2
    client.post(save, {"target": "live", "requested": "5", "editing": "live"})
    config.refresh_from_db()
    assert config.requested == 5

    delete = reverse("functions:provisioned_delete", kwargs={"pk": function.pk, "target": "live"})
    response = client.post(delete, follow=True)
    assert not ProvisionedConcurrencyConfig.objects.exists()
    assert "Provisioned concurrency of live removed." in flashes(response)


def test_provisioned_concurrency_errors_are_shown_at_their_fields(user: User):
    function = reserved(make_function(user, "orders"), 3)
    function_version_publish(function=function)
    client = signed_in_client(user)
    save = reverse("functions:provisioned_save", kwargs={"pk": function.pk})

    over = client.post(save, {"target": "1", "requested": "4"})
    zero = client.post(save, {"target": "1", "requested": "0"})
    latest = client.post(save, {"target": "$LATEST", "requested": "1"})

    assert over.status_code == 400
    assert (
        "should not be greater than the reservedConcurrentExecution"
        in (over.context["provisioned_form"].errors["requested"][0])
    )
    assert zero.context["provisioned_form"].errors["requested"] == [
        "Provisioned concurrency must be at least 1."
    ]
    assert latest.context["provisioned_form"].errors["target"] == [
        "Choose one of the function's versions or aliases."
    ]
    assert not ProvisionedConcurrencyConfig.objects.exists()


def test_another_users_function_is_not_found(user: User, other_user: User):
    function = make_function(other_user, "theirs")
    url = reverse("functions:concurrency_reserve", kwargs={"pk": function.pk})

    response = signed_in_client(user).post(url, {"mode": "reserve", "reserved": "1"})

    assert response.status_code == 404
    function.refresh_from_db()
    assert function.reserved_concurrency is None


def test_the_console_test_button_shows_the_throttle(user: User):
    function = reserved(make_function(user, "held"), 0)

    response = signed_in_client(user).post(
        reverse("invocations:test_run", kwargs={"pk": function.pk}), {"payload": "{}"}
    )

    content = response.content.decode()
    assert "TooManyRequestsException" in content
    assert "Rate Exceeded." in content
    assert not function.invocations.exists()
