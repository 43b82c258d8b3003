"""Database helpers shared by the apps."""

from __future__ import annotations

import time
import weakref
from functools import lru_cache
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# Django turns psycopg's automatic preparing off (for connection poolers); a threshold no
# query reaches keeps it off for all but the statements that ask (its own cursors bind
# parameters on the client and never prepare).
_PREPARE_ONLY_WHEN_ASKED = 2**31

# Server connections already relaxed: a pooled connection is handed out again and again.
_relaxed_sessions: weakref.WeakSet[Any] = weakref.WeakSet()


def relax_commit_durability() -> None:
    """Within the current transaction, let COMMIT return before the WAL reaches disk.

    For writes that a Postgres crash may lose at a price paid knowingly: the record of an
    invocation whose caller is still waiting (it gets an error instead, and nothing ran),
    and, unless STRATUS_WORKER_RELAXED_COMMITS is off, what the worker writes. The database
    stays consistent; only the last fraction of a second can be lost.
    """
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def relax_session_durability(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """connection_created receiver for worker processes (see STRATUS_WORKER_RELAXED_COMMITS)."""
    if connection.vendor != "postgresql" or connection.connection in _relaxed_sessions:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    _relaxed_sessions.add(connection.connection)


def insert_row(instance: models.Model, *, relaxed: bool = False) -> None:
    """Insert a new row whose primary key is already set, in one round trip on Postgres
    outside a transaction (the ORM's way takes three or more with a relaxed commit).

    `relaxed`: its commit does not wait for the WAL to reach disk (relax_commit_durability).
    """
    if instance.pk is None:
        raise ValueError("insert_row needs the primary key set")
    # The wrapper itself, not the `connection` proxy, which costs a lookup per attribute.
    database = connections[DEFAULT_DB_ALIAS]
    if database.vendor != "postgresql" or database.in_atomic_block:
        with transaction.atomic():
            if relaxed:
                relax_commit_durability()
            instance.save(force_insert=True)
        return
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), database)
        for field in instance._meta.concrete_fields
    ]
    with database.cursor() as cursor:
        cursor.execute(_insert_sql(type(instance), relaxed), values)
    instance._state.adding = False
    instance._state.db = database.alias


def execute_prepared(sql: str, params: dict[str, Any]) -> None:
    """Run a statement the process runs again and again as a prepared statement on
    Postgres: parsed and planned once per connection, its parameters sent apart from the
    text instead of quoted into it (which costs the client more than the statement)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _PREPARE_ONLY_WHEN_ASKED
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


@lru_cache(maxsize=32)
def _insert_sql(model: type[models.Model], relaxed: bool) -> str:
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(quote(str(field.column)) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Several statements in one query string run as one implicit transaction, so SET LOCAL
    # holds for its commit alone, and a failed INSERT leaves nothing behind.
    prefix = "SET LOCAL synchronous_commit TO OFF; " if relaxed else ""
    return f"{prefix}INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
