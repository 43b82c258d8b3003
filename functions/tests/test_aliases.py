"""Aliases through the services (Lambda's rules), version deletion they block, and the
Aliases tab."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from console.tests.factories import make_function, signed_in_client
from functions.alias_services import (
    WEIGHTED_LATEST,
    AliasExists,
    AliasVersionNotFound,
    Routing,
    function_alias_create,
    function_alias_delete,
    function_alias_pick_version,
    function_alias_update,
)
from functions.models import Function, FunctionAlias, FunctionVersion
from functions.selectors import function_alias_get, function_alias_list
from functions.services import (
    RevisionMismatch,
    VersionInUse,
    function_delete,
    function_deploy_code,
    function_update_configuration,
    function_version_delete,
    function_version_publish,
    role_create_basic,
)

pytestmark = pytest.mark.django_db


def with_versions(user: User, count: int = 2, name: str = "hello") -> Function:
    function = make_function(user, name)
    for number in range(1, count + 1):
        function = function_deploy_code(
            function=function,
            files={"lambda_function.py": f"def lambda_handler(e, c):\n    return {number}\n"},
        )
        function_version_publish(function=function)
    return function


def field_errors(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return exc.value.message_dict


def test_an_alias_points_to_a_version(user: User):
    function = with_versions(user)

    alias = function_alias_create(
        function=function, name="live", function_version="1", description="production"
    )

    assert (alias.name, alias.function_version, alias.description) == ("live", "1", "production")
    assert not alias.is_weighted
    assert alias.versions == ["1"]
    assert function_alias_get(function=function, name="live") == alias


def test_a_plain_alias_may_point_to_latest(user: User):
    function = with_versions(user, 0)

    alias = function_alias_create(function=function, name="edge", function_version="$LATEST")

    assert alias.function_version == "$LATEST"


def test_a_weighted_alias_keeps_its_routing(user: User):
    function = with_versions(user)

    alias = function_alias_create(
        function=function,
        name="canary",
        function_version="1",
        routing=Routing(additional_version="2", weight=0.25),
    )

    assert alias.is_weighted
    assert alias.versions == ["1", "2"]
    assert alias.additional_weight == 0.25


@pytest.mark.parametrize("name", ["", "123", "has space", "dollar$", "x" * 129])
def test_alias_names_follow_lambdas_pattern(user: User, name: str):
    function = with_versions(user, 1)

    with pytest.raises(ValidationError) as refused:
        function_alias_create(function=function, name=name, function_version="1")

    assert "name" in field_errors(refused)


def test_names_with_digits_hyphens_and_underscores_are_fine(user: User):
    function = with_versions(user, 1)

    alias = function_alias_create(function=function, name="v2-blue_1", function_version="1")

    assert alias.name == "v2-blue_1"


def test_an_alias_name_is_unique_per_function(user: User):
    function = with_versions(user, 1)
    other = with_versions(user, 1, name="other")
    function_alias_create(function=function, name="live", function_version="1")

    with pytest.raises(AliasExists, match="Alias already exists: arn:aws:lambda:.*:hello:live"):
        function_alias_create(function=function, name="live", function_version="1")
    function_alias_create(function=other, name="live", function_version="1")

    assert FunctionAlias.objects.count() == 2


def test_an_unpublished_version_is_not_found(user: User):
    function = with_versions(user, 1)

    with pytest.raises(AliasVersionNotFound) as missing:
        function_alias_create(function=function, name="live", function_version="7")

    assert field_errors(missing)["function_version"][0].endswith(":function:hello:7")


def test_a_version_must_be_latest_or_a_number(user: User):
    function = with_versions(user, 1)

    with pytest.raises(ValidationError) as refused:
        function_alias_create(function=function, name="live", function_version="other")

    assert "function_version" in field_errors(refused)


@pytest.mark.parametrize(
    ("primary", "additional", "weight", "field", "message"),
    [
        ("$LATEST", "1", 0.5, "additional_version", WEIGHTED_LATEST),
        ("1", "$LATEST", 0.5, "additional_version", WEIGHTED_LATEST),
        ("1", "1", 0.5, "additional_version", "must differ"),
        ("1", "2", 1.5, "weight", "between 0.0 and 1.0"),
        ("1", "2", -0.1, "weight", "between 0.0 and 1.0"),
        ("1", "beta", 0.5, "additional_version", "must be a published version"),
    ],
)
def test_weighted_alias_rules(
    user: User, primary: str, additional: str, weight: float, field: str, message: str
):
    function = with_versions(user)

    with pytest.raises(ValidationError) as refused:
        function_alias_create(
            function=function,
            name="canary",
            function_version=primary,
            routing=Routing(additional_version=additional, weight=weight),
        )

    assert message in " ".join(field_errors(refused)[field])
    assert not FunctionAlias.objects.exists()


def test_an_unpublished_additional_version_is_not_found(user: User):
    function = with_versions(user)

    with pytest.raises(AliasVersionNotFound) as missing:
        function_alias_create(
            function=function,
            name="canary",
            function_version="1",
            routing=Routing(additional_version="9", weight=0.1),
        )

    assert "additional_version" in field_errors(missing)


def test_both_versions_of_a_weighted_alias_need_the_same_role(user: User):
    function = with_versions(user, 1)
    other_role = role_create_basic(owner=user, function_name="elsewhere")
    function = function_update_configuration(function=function, role=other_role)
    function_version_publish(function=function)

    with pytest.raises(ValidationError, match="same execution role"):
        function_alias_create(
            function=function,
            name="canary",
            function_version="1",
            routing=Routing(additional_version="2", weight=0.1),
        )


def test_a_long_description_is_refused(user: User):
    function = with_versions(user, 1)

    with pytest.raises(ValidationError) as refused:
        function_alias_create(
            function=function, name="live", function_version="1", description="d" * 257
        )

    assert "description" in field_errors(refused)


def test_updating_changes_only_what_is_given_and_the_revision(user: User):
    function = with_versions(user)
    alias = function_alias_create(
        function=function,
        name="live",
        function_version="1",
        description="keep me",
        routing=Routing(additional_version="2", weight=0.1),
    )
    first_revision = alias.revision_id

    moved = function_alias_update(alias=alias, function_version="2", routing=None)
    described = function_alias_update(alias=moved, description="new words")

    assert (moved.function_version, moved.description, moved.is_weighted) == ("2", "keep me", False)
    assert described.function_version == "2"
    assert described.description == "new words"
    assert len({first_revision, moved.revision_id, described.revision_id}) == 3


def test_updating_keeps_the_routing_unless_told(user: User):
    function = with_versions(user, 3)
    alias = function_alias_create(
        function=function,
        name="live",
        function_version="1",
        routing=Routing(additional_version="2", weight=0.1),
    )

    updated = function_alias_update(alias=alias, function_version="3")

    assert updated.versions == ["3", "2"]
    assert updated.additional_weight == 0.1


def test_an_update_with_a_stale_revision_is_refused(user: User):
    function = with_versions(user)
    alias = function_alias_create(function=function, name="live", function_version="1")

    with pytest.raises(RevisionMismatch):
        function_alias_update(alias=alias, function_version="2", revision_id="stale")

    current = function_alias_update(
        alias=alias, function_version="2", revision_id=str(alias.revision_id)
    )
    assert current.function_version == "2"


def test_an_update_follows_the_same_rules(user: User):
    function = with_versions(user)
    alias = function_alias_create(function=function, name="live", function_version="1")

    with pytest.raises(ValidationError, match=r"\$LATEST is not supported"):
        function_alias_update(
            alias=alias,
            function_version="$LATEST",
            routing=Routing(additional_version="2", weight=0.5),
        )

    assert FunctionAlias.objects.get().function_version == "1"


def test_deleting_a_version_an_alias_uses_is_refused(user: User):
    function = with_versions(user, 3)
    function_alias_create(function=function, name="live", function_version="1")
    function_alias_create(
        function=function,
        name="canary",
        function_version="3",
        routing=Routing(additional_version="1", weight=0.5),
    )
    first = FunctionVersion.objects.get(function=function, version=1)

    with pytest.raises(VersionInUse) as refused:
        function_version_delete(version=first)

    assert refused.value.messages == [
        "Unable to delete version because the following aliases reference it: [canary, live]"
    ]
    assert FunctionVersion.objects.filter(pk=first.pk).exists()
    function_version_delete(version=FunctionVersion.objects.get(function=function, version=2))
    assert FunctionVersion.objects.filter(function=function).count() == 2


def test_deleting_the_alias_frees_the_version(user: User):
    function = with_versions(user, 1)
    alias = function_alias_create(function=function, name="live", function_version="1")

    function_alias_delete(alias=alias)
    function_version_delete(version=FunctionVersion.objects.get(function=function))

    assert not FunctionVersion.objects.exists()


def test_deleting_the_function_deletes_its_aliases(user: User):
    function = with_versions(user, 1)
    function_alias_create(function=function, name="live", function_version="1")

    function_delete(function=function)

    assert not FunctionAlias.objects.exists()


def test_listing_filters_by_version(user: User):
    function = with_versions(user, 3)
    function_alias_create(function=function, name="b-live", function_version="1")
    function_alias_create(
        function=function,
        name="a-canary",
        function_version="2",
        routing=Routing(additional_version="1", weight=0.5),
    )
    function_alias_create(function=function, name="c-next", function_version="3")

    def names(version: str | None = None) -> list[str]:
        aliases = function_alias_list(function=function, function_version=version)
        return [alias.name for alias in aliases]

    assert names() == ["a-canary", "b-live", "c-next"]
    assert names("1") == ["a-canary", "b-live"]
    assert names("3") == ["c-next"]


def test_picking_a_version_follows_the_weight(user: User, monkeypatch: pytest.MonkeyPatch):
    function = with_versions(user)
    alias = function_alias_create(
        function=function,
        name="canary",
        function_version="1",
        routing=Routing(additional_version="2", weight=0.3),
    )
    plain = function_alias_create(function=function, name="live", function_version="1")

    monkeypatch.setattr("functions.alias_services.random.random", lambda: 0.29)
    assert function_alias_pick_version(alias=alias) == "2"
    monkeypatch.setattr("functions.alias_services.random.random", lambda: 0.3)
    assert function_alias_pick_version(alias=alias) == "1"
    monkeypatch.setattr("functions.alias_services.random.random", lambda: 0.0)
    assert function_alias_pick_version(alias=plain) == "1"


# The Aliases tab.


def aliases_url(function: Function) -> str:
    return f"{reverse('functions:detail', args=[function.pk])}?tab=aliases"


def test_the_aliases_tab_comes_after_versions_and_lists_aliases(user: User):
    function = with_versions(user)
    function_alias_create(function=function, name="live", function_version="1", description="prod")
    function_alias_create(
        function=function,
        name="canary",
        function_version="1",
        routing=Routing(additional_version="2", weight=0.3),
    )

    response = signed_in_client(user).get(aliases_url(function))

    page = response.content.decode()
    assert response.status_code == 200
    assert page.index(">Versions<") < page.index(">Aliases<")
    assert "prod" in page
    assert 'Version 1: <span class="alias-weight">70%</span>' in page
    assert 'version 2: <span class="alias-weight">30%</span>' in page
    assert 'id="alias-create-modal"' in page
    assert 'id="alias-delete-modal-canary"' in page
    assert 'id="alias-edit-modal"' not in page


def test_the_aliases_tab_without_aliases_says_so(user: User):
    function = with_versions(user, 0)

    response = signed_in_client(user).get(aliases_url(function))

    assert "No aliases" in response.content.decode()


def test_creating_a_weighted_alias_from_the_console(user: User):
    function = with_versions(user)

    response = signed_in_client(user).post(
        reverse("functions:alias_create", args=[function.pk]),
        {
            "name": "canary",
            "description": "a tenth",
            "function_version": "1",
            "additional_version": "2",
            "weight": "10",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == aliases_url(function)
    assert "Successfully created alias canary" in response.content.decode()
    alias = FunctionAlias.objects.get()
    assert (alias.function_version, alias.additional_version) == ("1", "2")
    assert alias.additional_weight == pytest.approx(0.1)


def test_console_errors_show_at_the_field(user: User):
    function = with_versions(user)
    client = signed_in_client(user)
    url = reverse("functions:alias_create", args=[function.pk])

    bad_name = client.post(url, {"name": "123", "function_version": "1"})
    latest = client.post(
        url,
        {"name": "x", "function_version": "$LATEST", "additional_version": "1", "weight": "5"},
    )
    no_weight = client.post(url, {"name": "x", "function_version": "1", "additional_version": "2"})

    for response in (bad_name, latest, no_weight):
        assert response.status_code == 400
        assert "data-open-on-load" in response.content.decode()
    assert 'id="alias-create-name" name="name" value="123"' in bad_name.content.decode()
    assert "cannot be only digits" in bad_name.content.decode()
    assert WEIGHTED_LATEST in latest.content.decode()
    assert "Enter the share of invocations" in no_weight.content.decode()
    assert not FunctionAlias.objects.exists()


def test_an_existing_name_is_refused_at_the_name_field(user: User):
    function = with_versions(user, 1)
    function_alias_create(function=function, name="live", function_version="1")

    response = signed_in_client(user).post(
        reverse("functions:alias_create", args=[function.pk]),
        {"name": "live", "function_version": "$LATEST"},
    )

    assert response.status_code == 400
    assert "Alias already exists" in response.content.decode()
    assert FunctionAlias.objects.get().function_version == "1"


def test_editing_from_the_console(user: User):
    function = with_versions(user)
    function_alias_create(
        function=function,
        name="canary",
        function_version="1",
        routing=Routing(additional_version="2", weight=0.3),
    )
    client = signed_in_client(user)

    form = client.get(f"{aliases_url(function)}&edit=canary").content.decode()
    saved = client.post(
        reverse("functions:alias_update", args=[function.pk, "canary"]),
        {"description": "all in", "function_version": "2", "additional_version": ""},
        follow=True,
    )

    assert 'id="alias-edit-modal"' in form
    assert 'value="30"' in form
    assert "Successfully updated alias canary" in saved.content.decode()
    alias = FunctionAlias.objects.get()
    assert (alias.function_version, alias.description, alias.is_weighted) == ("2", "all in", False)


def test_a_bad_edit_reopens_the_edit_form(user: User):
    function = with_versions(user)
    function_alias_create(function=function, name="live", function_version="1")

    response = signed_in_client(user).post(
        reverse("functions:alias_update", args=[function.pk, "live"]),
        {"function_version": "1", "additional_version": "1", "weight": "50"},
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="alias-edit-modal"' in page
    assert "must differ" in page


def test_deleting_from_the_console(user: User):
    function = with_versions(user, 1)
    function_alias_create(function=function, name="live", function_version="1")

    response = signed_in_client(user).post(
        reverse("functions:alias_delete", args=[function.pk, "live"]), follow=True
    )

    assert "Deleted alias live" in response.content.decode()
    assert not FunctionAlias.objects.exists()


def test_another_users_aliases_are_out_of_reach(user: User, other_user: User):
    function = with_versions(other_user, 1)
    function_alias_create(function=function, name="live", function_version="1")
    client = signed_in_client(user)

    created = client.post(
        reverse("functions:alias_create", args=[function.pk]),
        {"name": "mine", "function_version": "1"},
    )
    deleted = client.post(reverse("functions:alias_delete", args=[function.pk, "live"]))

    assert (created.status_code, deleted.status_code) == (404, 404)
    assert list(FunctionAlias.objects.values_list("name", flat=True)) == ["live"]


def test_a_missing_alias_is_not_found(user: User):
    function = with_versions(user, 1)

    response = signed_in_client(user).post(
        reverse("functions:alias_delete", args=[function.pk, "nope"])
    )

    assert response.status_code == 404


def test_deleting_a_version_or_alias_deletes_its_async_and_provisioned_settings(user):
    from django.utils import timezone

    from functions.models import ProvisionedConcurrencyConfig
    from invocations.async_config import event_invoke_config_put

    function = with_versions(user, count=2)
    alias = function_alias_create(function=function, name="live", function_version="2")
    for qualifier in ("1", "live", "2"):
        event_invoke_config_put(function=function, qualifier=qualifier, maximum_retry_attempts=0)
        ProvisionedConcurrencyConfig.objects.create(
            function=function, qualifier=qualifier, requested=1, last_modified=timezone.now()
        )

    function_version_delete(version=FunctionVersion.objects.get(function=function, version=1))
    function_alias_delete(alias=alias)

    assert sorted(function.event_invoke_configs.values_list("qualifier", flat=True)) == ["2"]
    assert sorted(function.provisioned_concurrency_configs.values_list("qualifier", flat=True)) == [
        "2"
    ]
