"""Configuration -> Asynchronous invocation and Destinations, and the overview's Add
destination, through the Django test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from console.selectors import account_for_user
from console.tests.factories import make_function, make_user, signed_in_client
from functions.models import Function
from functions.services import function_version_publish
from invocations.async_config import event_invoke_config_get, event_invoke_config_put

pytestmark = pytest.mark.django_db


def section_url(function: Function, section: str, extra: str = "") -> str:
    url = reverse("functions:detail", kwargs={"pk": function.pk})
    return f"{url}?tab=configuration&section={section}{extra}"


def arn_of(function: Function) -> str:
    account_id = account_for_user(function.owner).account_id
    return f"arn:aws:lambda:us-east-1:{account_id}:function:{function.name}"


def async_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "qualifier": "$LATEST",
        "age_hours": "1",
        "age_minutes": "30",
        "age_seconds": "0",
        "retry_attempts": "1",
        "dead_letter_function": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def owner() -> User:
    return make_user("ada")


def test_the_section_shows_lambdas_defaults(owner):
    function = make_function(owner, "orders")

    response = signed_in_client(owner).get(section_url(function, "async"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Asynchronous invocation" in page
    assert "6h 0min 0sec" in page
    assert response.context["async_policy"].maximum_retry_attempts == 2
    assert "Dead-letter queue service" in page


def test_saving_the_asynchronous_configuration(owner):
    function = make_function(owner, "orders")
    dead_letters = make_function(owner, "failed-orders")
    client = signed_in_client(owner)

    form = client.get(section_url(function, "async", "&edit=1"))
    assert form.context["async_form"].initial["age_hours"] == 6
    response = client.post(
        reverse("functions:async_configuration", args=[function.pk]),
        async_data(dead_letter_function=arn_of(dead_letters)),
    )

    assert response.status_code == 302
    assert response["Location"] == section_url(function, "async")
    config = event_invoke_config_get(function=function, qualifier="$LATEST")
    assert config is not None
    assert (config.maximum_retry_attempts, config.maximum_event_age_in_seconds) == (1, 5400)
    function.refresh_from_db()
    assert function.dead_letter_target_arn == arn_of(dead_letters)
    shown = client.get(response["Location"]).content.decode()
    assert "1h 30min 0sec" in shown
    assert "failed-orders" in shown


def test_a_bad_age_is_refused_at_its_field_and_nothing_is_lost(owner):
    function = make_function(owner, "orders")
    client = signed_in_client(owner)

    response = client.post(
        reverse("functions:async_configuration", args=[function.pk]),
        async_data(age_hours="7", age_minutes="0", retry_attempts="0"),
    )

    assert response.status_code == 400
    form = response.context["async_form"]
    assert form.errors["age_hours"] == [
        "Maximum age of event (1 minute to 6 hours) in seconds must be between 60 and 21600."
    ]
    page = response.content.decode()
    assert 'name="age_hours" value="7"' in page
    assert '<option value="0" selected>' in page
    assert event_invoke_config_get(function=function, qualifier="$LATEST") is None


def test_a_version_keeps_its_own_settings(owner):
    function = make_function(owner, "orders")
    function_version_publish(function=function)
    client = signed_in_client(owner)

    response = client.post(
        reverse("functions:async_configuration", args=[function.pk]),
        async_data(qualifier="1", retry_attempts="0"),
    )

    assert response.status_code == 302
    assert response["Location"] == section_url(function, "async", "&qualifier=1")
    version_config = event_invoke_config_get(function=function, qualifier="1")
    assert version_config is not None
    assert version_config.maximum_retry_attempts == 0
    assert event_invoke_config_get(function=function, qualifier="$LATEST") is None
    edit = client.get(section_url(function, "async", "&qualifier=1&edit=1")).content.decode()
    assert "Dead-letter queue service" not in edit


def test_adding_editing_and_removing_a_destination(owner):
    function = make_function(owner, "orders")
    make_function(owner, "audit")
    make_function(owner, "alerts")
    client = signed_in_client(owner)
    account_id = account_for_user(owner).account_id
    audit = f"arn:aws:lambda:us-east-1:{account_id}:function:audit"
    alerts = f"arn:aws:lambda:us-east-1:{account_id}:function:alerts"

    form = client.get(section_url(function, "destinations", "&add=1"))
    choices = dict(form.context["destination_form"].fields["destination"].choices)
    assert set(choices) == {"", audit, alerts}
    save = reverse("functions:destination_save", args=[function.pk])
    common = {"qualifier": "$LATEST", "source": "async", "destination_type": "function"}
    added = client.post(save, {**common, "condition": "failure", "destination": audit})
    client.post(save, {**common, "condition": "success", "destination": alerts})

    assert added.status_code == 302
    listed = client.get(section_url(function, "destinations"))
    rows = [(row.condition_label, row.function_name) for row in listed.context["destination_rows"]]
    assert rows == [("On success", "alerts"), ("On failure", "audit")]

    edited = client.post(save, {**common, "condition": "failure", "destination": alerts})
    assert edited.status_code == 302
    config = event_invoke_config_get(function=function, qualifier="$LATEST")
    assert config is not None
    assert (config.on_success, config.on_failure) == (alerts, alerts)

    removed = client.post(
        reverse("functions:destination_remove", args=[function.pk]),
        {"qualifier": "$LATEST", "condition": "success"},
    )
    assert removed.status_code == 302
    config.refresh_from_db()
    assert (config.on_success, config.on_failure) == ("", alerts)
    # The retry settings stay what they were: Lambda's defaults.
    assert config.maximum_retry_attempts is None


def test_a_destination_must_be_chosen_and_keeps_the_condition(owner):
    function = make_function(owner, "orders")
    client = signed_in_client(owner)

    response = client.post(
        reverse("functions:destination_save", args=[function.pk]),
        {
            "qualifier": "$LATEST",
            "source": "async",
            "destination_type": "function",
            "condition": "success",
            "destination": "",
        },
    )

    assert response.status_code == 400
    assert response.context["destination_form"].errors["destination"] == [
        "Choose the function that receives the records."
    ]
    assert 'value="success" checked' in response.content.decode()


def test_another_users_function_is_not_a_choice(owner):
    function = make_function(owner, "orders")
    stranger = make_user("eve")
    theirs = make_function(stranger, "theirs")
    event_invoke_config_put(function=function, maximum_retry_attempts=1)

    response = signed_in_client(owner).post(
        reverse("functions:destination_save", args=[function.pk]),
        {
            "qualifier": "$LATEST",
            "source": "async",
            "destination_type": "function",
            "condition": "failure",
            "destination": arn_of(theirs),
        },
    )

    assert response.status_code == 400
    assert "destination" in response.context["destination_form"].errors
    assert signed_in_client(stranger).get(section_url(function, "destinations")).status_code == 404


def test_the_overview_has_add_destination(owner):
    function = make_function(owner, "orders")

    page = signed_in_client(owner).get(reverse("functions:detail", args=[function.pk]))

    assert (
        f'href="{reverse("functions:detail", args=[function.pk])}'
        '?tab=configuration&amp;section=destinations&amp;add=1"'
    ) in page.content.decode()
