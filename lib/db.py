"""Database helpers shared by the apps."""

from __future__ import annotations

import weakref
from typing import Any

from django.db import connection, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

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
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic():
            if relaxed:
                relax_commit_durability()
            instance.save(force_insert=True)
        return
    meta = instance._meta
    fields = meta.concrete_fields
    quote = connection.ops.quote_name
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    ]
    # Several statements in one query string run as one implicit transaction, so SET LOCAL
    # holds for its commit alone, and a failed INSERT leaves nothing behind.
    prefix = "SET LOCAL synchronous_commit TO OFF; " if relaxed else ""
    columns = ", ".join(quote(str(field.column)) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.execute(
            f"{prefix}INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})",
            values,
        )
    instance._state.adding = False
    instance._state.db = connection.alias
