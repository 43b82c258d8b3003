from __future__ import annotations

from django.urls import path

from functions.views import (
    aliases,
    async_configuration,
    concurrency,
    configuration,
    create,
    delete,
    detail,
    listing,
    roles,
    versions,
)

app_name = "functions"
urlpatterns = [
    path("", listing.function_list, name="list"),
    path("create/", create.function_create, name="create"),
    path("blueprints/", create.blueprint_gallery, name="blueprints"),
    path("roles/", roles.role_list, name="roles"),
    path("<int:pk>/", detail.function_detail, name="detail"),
    path("<int:pk>/delete/", delete.function_delete, name="delete"),
    path("<int:pk>/versions/publish/", versions.version_publish, name="version_publish"),
    path("<int:pk>/aliases/create/", aliases.alias_create, name="alias_create"),
    path("<int:pk>/aliases/<str:name>/edit/", aliases.alias_update, name="alias_update"),
    path("<int:pk>/aliases/<str:name>/delete/", aliases.alias_delete, name="alias_delete"),
    path(
        "<int:pk>/configuration/general/",
        configuration.configuration_general,
        name="configuration_general",
    ),
    path(
        "<int:pk>/configuration/environment/",
        configuration.configuration_environment,
        name="configuration_environment",
    ),
    path(
        "<int:pk>/configuration/role/",
        configuration.configuration_role,
        name="configuration_role",
    ),
    path(
        "<int:pk>/configuration/concurrency/",
        concurrency.concurrency_reserve,
        name="concurrency_reserve",
    ),
    path(
        "<int:pk>/configuration/provisioned-concurrency/",
        concurrency.provisioned_save,
        name="provisioned_save",
    ),
    path(
        "<int:pk>/configuration/provisioned-concurrency/<str:target>/delete/",
        concurrency.provisioned_delete,
        name="provisioned_delete",
    ),
    path(
        "<int:pk>/configuration/async/",
        async_configuration.async_configuration_save,
        name="async_configuration",
    ),
    path(
        "<int:pk>/configuration/destinations/",
        async_configuration.destination_save,
        name="destination_save",
    ),
    path(
        "<int:pk>/configuration/destinations/remove/",
        async_configuration.destination_remove_view,
        name="destination_remove",
    ),
]
