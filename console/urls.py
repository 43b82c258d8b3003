from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="functions:list", permanent=False), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("console/", include("console.console_urls")),
    path("functions/", include("functions.urls")),
    path("functions/", include("functions.code_urls")),
    path("invocations/", include("invocations.urls")),
    path("monitoring/", include("monitoring.urls")),
    path("", include("api.urls")),
]
