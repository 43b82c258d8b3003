from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from console.templatetags.console_ui import human_bytes, minutes_seconds, relative_time
from console.tests.factories import make_function, signed_in_client

pytestmark = pytest.mark.django_db


def test_the_login_page_is_public_and_styled(client):
    response = client.get(reverse("login"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "auth-card" in content
    assert 'name="username"' in content
    assert 'name="password"' in content
    assert "console/stratus.css" in content


def test_signing_in_lands_on_the_function_list(client, user: User):
    response = client.post(
        reverse("login"),
        {"username": "alice", "password": "correct horse battery staple"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("functions:list")


def test_a_wrong_password_is_explained(client, user: User):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "alert-error" in response.content.decode()


def test_the_layout_has_top_nav_side_nav_and_breadcrumbs(user: User, settings):
    settings.STRATUS_REGION = "ap-south-2"

    content = signed_in_client(user).get(reverse("functions:list")).content.decode()

    assert 'class="top-nav"' in content
    assert "ap-south-2" in content
    assert ">alice<" in content
    assert re.search(r'<form method="post" action="/accounts/logout/">', content)
    assert 'aria-label="Breadcrumbs"' in content
    for name in ("functions:list", "functions:roles", "functions:blueprints"):
        assert f'href="{reverse(name)}"' in content
    assert 'hx-headers=\'{"X-CSRFToken": "' in content
    assert 'name="htmx-config"' in content
    assert "vendor/htmx-2.0.11/htmx.min.js" in content


@pytest.mark.parametrize(
    ("url_name", "label"),
    [("functions:list", "Functions"), ("functions:roles", "Execution roles")],
)
def test_the_side_nav_marks_the_current_page(user: User, url_name: str, label: str):
    content = signed_in_client(user).get(reverse(url_name)).content.decode()

    assert f'aria-current="page">{label}</a>' in content


def test_pages_have_no_inline_scripts(user: User):
    content = signed_in_client(user).get(reverse("functions:create")).content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", content)
    assert not re.search(r"\son[a-z]+=", content)


def test_signing_out_needs_post(user: User):
    client = signed_in_client(user)

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("functions:list")).status_code == 302


def test_flash_messages_are_dismissible_alerts(user: User):
    client = signed_in_client(user)
    function = make_function(user)
    client.post(reverse("functions:delete", kwargs={"pk": function.pk}), {"confirm": "confirm"})

    content = client.get(reverse("functions:list")).content.decode()

    assert 'class="alert alert-success"' in content
    assert "Successfully deleted function hello." in content
    assert "data-dismiss" in content


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 byte"), (299, "299 byte"), (1234, "1.2 kB"), (5_400_000, "5.4 MB"), (None, "-")],
)
def test_human_bytes(size: int | None, text: str):
    assert human_bytes(size) == text


def test_minutes_seconds():
    assert minutes_seconds(3) == "0 min 3 sec"
    assert minutes_seconds(900) == "15 min 0 sec"


def test_relative_time_gives_the_exact_time_on_hover():
    moment = timezone.now() - timedelta(minutes=5)

    html = relative_time(moment)

    assert "5\xa0minutes ago" in html
    assert f'datetime="{moment.isoformat()}"' in html
    assert "(UTC)" in html


def test_relative_time_for_just_now_and_missing_values():
    assert ">just now<" in relative_time(timezone.now())
    assert relative_time(None) == "-"


def test_nav_section_without_a_request_is_empty():
    rendered = Template("{% load console_ui %}[{% nav_section %}]").render(Context({}))

    assert rendered == "[]"
