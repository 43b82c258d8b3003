"""Riding out a short database outage (a Postgres restart or failover)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_DELAY_SECONDS = 0.2
_LONGEST_DELAY_SECONDS = 2.0


def retry_through_database_outage(action: Callable[[], T], *, for_seconds: float) -> T:
    """Run `action`, a self-contained write; while the database cannot be reached, run it
    again on a fresh connection, for up to `for_seconds`.

    Inside a transaction there is nothing to retry (the transaction is lost), so the error
    is raised at once there.
    """
    deadline = time.monotonic() + for_seconds
    delay = _FIRST_DELAY_SECONDS
    while True:
        try:
            return action()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
            logger.warning("database unreachable (%s); retrying in %.1f s", exc, delay)
        # A broken connection goes back to the pool, which discards it.
        connection.close()
        time.sleep(delay)
        delay = min(delay * 2, _LONGEST_DELAY_SECONDS)
