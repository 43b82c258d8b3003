from __future__ import annotations

from django.urls import path

from invocations import views

app_name = "invocations"
urlpatterns = [
    path(
        "event-templates/<slug:template_id>/",
        views.event_template,
        name="event_template",
    ),
    path("functions/<int:pk>/test/", views.run_test, name="test_run"),
    path(
        "functions/<int:pk>/test/<uuid:request_id>/",
        views.run_result,
        name="test_result",
    ),
    path("functions/<int:pk>/test-events/form/", views.event_form, name="test_event_form"),
    path("functions/<int:pk>/test-events/save/", views.save_event, name="test_event_save"),
    path(
        "functions/<int:pk>/test-events/<int:event_pk>/rename/",
        views.rename_event,
        name="test_event_rename",
    ),
    path(
        "functions/<int:pk>/test-events/<int:event_pk>/delete/",
        views.delete_event,
        name="test_event_delete",
    ),
]
