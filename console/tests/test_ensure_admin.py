from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db

User = get_user_model()
_ENV = ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def run_ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    match = re.search(r"password: (\S+)", output)
    assert match, output
    return match.group(1)


def test_generates_admin_and_prints_its_password_in_a_box() -> None:
    output = run_ensure_admin()

    password = printed_password(output)
    assert len(password) >= 16
    lines = output.strip().splitlines()
    assert lines[0].startswith("+--") and lines[-1] == lines[0]
    assert all(line.startswith("|") and line.endswith("|") for line in lines[1:-1])
    assert len({len(line) for line in lines}) == 1
    assert "username: admin" in output
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser and user.is_staff


def test_second_run_creates_nothing_and_prints_no_password() -> None:
    first = run_ensure_admin()
    password = printed_password(first)

    second = run_ensure_admin()

    assert password not in second
    assert "password" not in second
    assert "Administrator account exists: admin" in second
    assert User.objects.count() == 1


def test_uses_django_superuser_variables_without_printing_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct-horse-battery")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")

    output = run_ensure_admin()

    assert "correct-horse-battery" not in output
    assert "Administrator account created: ops" in output
    user = User.objects.get(username="ops")
    assert user.email == "ops@example.com"
    assert user.is_superuser
    assert authenticate(username="ops", password="correct-horse-battery") == user


def test_an_existing_superuser_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    User.objects.create_superuser(username="root", email="", password="x-long-password")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "someone-else")

    output = run_ensure_admin()

    assert "Administrator account exists: root" in output
    assert list(User.objects.values_list("username", flat=True)) == ["root"]


def test_refuses_to_reuse_the_name_of_an_ordinary_user() -> None:
    User.objects.create_user(username="admin", password="an-ordinary-password")

    with pytest.raises(CommandError, match="exists but is not a superuser"):
        run_ensure_admin()

    assert not User.objects.filter(is_superuser=True).exists()
