from __future__ import annotations

import secrets
import time

from django.contrib.auth.models import User
from django.core.management import call_command

from console.celery import app as celery_app
from functions.models import Function
from functions.services import function_create
from invocations.services import invocation_submit, invocation_wait

HELLO = """import json

print("Loading function")


def lambda_handler(event, context):
    print("value1 = " + event["key1"])
    print("value2 = " + event["key2"])
    print("value3 = " + event["key3"])
    return event["key1"]
"""
PAYLOAD = '{"key1": "hello, world!", "key2": "value2", "key3": "value3"}'
WARM_UP = 20


def prepare_database() -> None:
    """Create the benchmark's database if this Postgres has none yet, then migrate it."""
    ensure_database_exists()
    call_command("migrate", verbosity=0)


def ensure_database_exists() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    import psycopg
    from psycopg import sql

    params = connection.get_connection_params()
    name = connection.settings_dict["NAME"]
    params = {k: v for k, v in params.items() if k in {"host", "port", "user", "password"}}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def bench_function() -> tuple[Function, User, str]:
    password = secrets.token_urlsafe(16)
    user, _ = User.objects.get_or_create(username="bench")
    user.set_password(password)
    user.save()
    Function.objects.filter(owner=user).delete()
    function = function_create(
        owner=user, name="bench-hello", role=None, files={"lambda_function.py": HELLO}
    )
    return function, user, password


def wait_for_worker(timeout: float = 60) -> None:
    celery_app.send_task("stratus.ping").get(timeout=timeout)


def measure_celery_round_trip(n: int) -> list[float]:
    samples = []
    for i in range(n + WARM_UP):
        start = time.perf_counter()
        celery_app.send_task("stratus.ping").get(timeout=10)
        if i >= WARM_UP:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def measure_service_invocations(function: Function, n: int) -> list[float]:
    samples = []
    for i in range(n + WARM_UP):
        start = time.perf_counter()
        invocation = invocation_wait(
            invocation=invocation_submit(function=function, payload=PAYLOAD)
        )
        elapsed = (time.perf_counter() - start) * 1000
        if invocation.status != "succeeded":
            raise RuntimeError(f"bench invocation failed: {invocation.response}")
        if i >= WARM_UP:
            samples.append(elapsed)
    return samples
