"""Throttled asynchronous events: accepted events are never dropped for lack of
concurrency. The record stays queued, a Throttles datapoint is counted, and the event comes
back after a backoff that grows from 1 s to 5 min, as Lambda retries throttled events."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from console.celery import app as celery_app
from invocations.function_snapshot import FunctionSnapshot
from invocations.models import Invocation, InvocationStatus
from invocations.recorder import record_throttle

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0
THROTTLES_KEY = "throttles"


def backoff_seconds(throttles: int) -> float:
    """The wait before the next try of an event throttled `throttles` times in a row."""
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0 ** max(0, throttles - 1))


def event_expired(job: dict[str, Any], snapshot: FunctionSnapshot) -> bool:
    """Whether the event has waited past its maximum age: then it is not put back but
    taken, and ends as EventAgeExceeded without running."""
    from invocations.async_config import async_policy

    policy = async_policy(function_id=snapshot.function_id, qualifier=job["qualifier"])
    age = timezone.now() - datetime.fromisoformat(job["accepted_at"])
    return age.total_seconds() >= policy.maximum_event_age_in_seconds


def event_requeue_throttled(
    *, request_id: str, job: dict[str, Any], snapshot: FunctionSnapshot, claimed: bool
) -> float | None:
    """Put a throttled event back in the queue and publish it again after the backoff;
    `claimed` says the record was already taken (running) and must be handed back.
    Returns the backoff in seconds, or None when the record was not where this delivery
    expected it (another delivery of the message has it, or it has ended)."""
    throttles = int(job.get(THROTTLES_KEY, 0)) + 1
    delay = backoff_seconds(throttles)
    now = timezone.now()
    records = Invocation.objects.filter(pk=request_id)
    if claimed:
        # Nothing ran: handing the record back does not use up one of its attempts.
        updated = records.filter(status=InvocationStatus.RUNNING).update(
            status=InvocationStatus.QUEUED,
            started_at=None,
            attempts=F("attempts") - 1,
            next_attempt_at=now + timedelta(seconds=delay),
        )
    else:
        updated = records.filter(status=InvocationStatus.QUEUED).update(
            next_attempt_at=now + timedelta(seconds=delay)
        )
    if not updated:
        return None
    record_throttle(snapshot=snapshot, qualifier=job["qualifier"], at=now)
    _publish_later(request_id, {**job, THROTTLES_KEY: throttles}, delay)
    return delay


def _publish_later(request_id: str, job: dict[str, Any], delay: float) -> None:
    from invocations.tasks import run_invocation_task

    if celery_app.conf.task_always_eager:
        # In-process mode runs a task the moment it is published: wait on a timer instead.
        timer = threading.Timer(
            delay, lambda: run_invocation_task.apply(args=(request_id, job), task_id=request_id)
        )
        timer.daemon = True
        timer.start()
        return
    run_invocation_task.apply_async(
        args=(request_id, job), task_id=request_id, countdown=delay, ignore_result=True
    )
