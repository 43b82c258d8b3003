from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("stratus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="stratus.ping")
def ping() -> str:
    """A no-op round trip: the floor the benchmarks compare invocations against."""
    return "pong"
