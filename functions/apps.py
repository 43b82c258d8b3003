from __future__ import annotations

from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "functions"
