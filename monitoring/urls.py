from __future__ import annotations

from django.urls import path

from monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/metrics/", views.account_metrics, name="account-metrics"),
    path("functions/<int:pk>/monitor/", views.monitor_tab, name="monitor-tab"),
    path("functions/<int:pk>/metrics/", views.metrics, name="metrics"),
    path("functions/<int:pk>/invocations/", views.recent_invocations, name="recent-invocations"),
    path("invocations/<uuid:request_id>/logs/", views.invocation_logs, name="invocation-logs"),
]
