from __future__ import annotations

from django.urls import path

from functions import code_tab

app_name = "code"
urlpatterns = [
    path("<int:pk>/code/deploy/", code_tab.code_deploy, name="deploy"),
    path("<int:pk>/code/upload/", code_tab.code_upload, name="upload"),
    path("<int:pk>/code/runtime/", code_tab.runtime_settings_edit, name="runtime"),
]
