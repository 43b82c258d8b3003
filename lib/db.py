"""Database helpers shared by the apps."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper


def relax_commit_durability() -> None:
    """Within the current transaction, let COMMIT return before the WAL reaches disk.

    For writes that a Postgres crash may lose without harm: the record of an invocation
    whose caller is still waiting (it gets an error instead), and what the worker records
    (a lost finish leaves the record running, and the sweeper fails it). Everything stays
    consistent; only the last fraction of a second can be lost.
    """
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def relax_session_durability(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """connection_created receiver for worker processes (see relax_commit_durability)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
