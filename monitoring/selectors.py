"""Reads of logs and metrics."""

from __future__ import annotations

import uuid

from monitoring.models import LogEvent


def log_messages_for_invocation(*, request_id: uuid.UUID | str) -> list[str]:
    """The invocation's log lines in order: init output (cold starts), START, output, END,
    REPORT."""
    return list(
        LogEvent.objects.filter(request_id=request_id)
        .order_by("timestamp", "id")
        .values_list("message", flat=True)
    )
