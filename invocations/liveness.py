"""Worker liveness: what happens to invocations whose worker process dies.

Each worker process keeps a WorkerHeartbeat row fresh (every STRATUS_WORKER_HEARTBEAT
seconds) and writes its id into every record it claims. A running record whose worker has
not been seen for STRATUS_WORKER_LOST_AFTER seconds lost its worker (SIGKILL, a crash, a
host gone, or a drain that ran out of time): the sweeper hands it back. An asynchronous one
goes back to the queue and runs again (Lambda retries asynchronous events); a synchronous
one is failed with a clear platform error, so the waiting caller gets an answer instead of
hanging, and its code (which may have run partly) is not run a second time behind its back.

Times are the database's own clock, so the hosts' clocks do not matter.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import QuerySet
from django.db.models.functions import Now
from django.utils import timezone

from invocations import lane
from invocations.models import (
    Invocation,
    InvocationStatus,
    InvocationType,
    WorkerHeartbeat,
    platform_failure_fields,
)
from lib.outage import retry_through_database_outage

logger = logging.getLogger(__name__)

WORKER_LOST_MESSAGE = "the worker running this invocation stopped before it finished"
# Heartbeat rows of workers gone this long are deleted.
FORGET_WORKERS_AFTER = timedelta(days=1)

_worker_id = ""


def current_worker_id() -> str:
    """This process's worker id, or "" where no worker registered (tasks in the web process)."""
    return _worker_id


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_beat(*, worker_id: str) -> None:
    """Record that the worker is alive (registering it on its first beat)."""
    updated = WorkerHeartbeat.objects.filter(worker_id=worker_id).update(last_seen=Now())
    if not updated:
        WorkerHeartbeat.objects.update_or_create(
            worker_id=worker_id,
            defaults={
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": timezone.now(),
                "last_seen": Now(),
            },
        )


def worker_unregister(*, worker_id: str) -> None:
    """The worker is leaving: anything it still has running is handed back at the next sweep."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()


class Heartbeat:
    """Keeps this process's WorkerHeartbeat row fresh from a thread of its own, through
    database outages (a failed beat is logged and the next one tried)."""

    def __init__(self, worker_id: str, *, interval: float) -> None:
        self.worker_id = worker_id
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True)

    def start(self) -> None:
        global _worker_id
        _worker_id = self.worker_id
        try:
            worker_beat(worker_id=self.worker_id)
        except DatabaseError:
            logger.warning("worker heartbeat failed; retrying", exc_info=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and unregister: call once nothing of this worker is running."""
        global _worker_id
        if _worker_id == self.worker_id:
            _worker_id = ""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        try:
            # This thread's connection may predate a database restart.
            retry_through_database_outage(
                lambda: worker_unregister(worker_id=self.worker_id), for_seconds=5
            )
        except DatabaseError:
            logger.warning("could not unregister worker %s", self.worker_id, exc_info=True)

    def _beat_forever(self) -> None:
        while not self._stopping.wait(self.interval):
            self._beat_once()

    def _beat_once(self) -> None:
        try:
            close_old_connections()
            worker_beat(worker_id=self.worker_id)
        except DatabaseError:
            logger.warning("worker heartbeat failed; retrying", exc_info=True)
        finally:
            # Back to the pool (or closed): a connection kept across a database restart
            # would fail the next beat too.
            connection.close()


def _database_just_started() -> bool:
    """Whether the database came up too recently for live workers to have beaten since."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT now() - pg_postmaster_start_time() < make_interval(secs => %s)",
            [settings.STRATUS_WORKER_LOST_AFTER],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _lost_after() -> timedelta:
    return timedelta(seconds=settings.STRATUS_WORKER_LOST_AFTER)


def _live_workers() -> QuerySet[WorkerHeartbeat, str]:
    return WorkerHeartbeat.objects.filter(last_seen__gte=Now() - _lost_after()).values_list(
        "worker_id", flat=True
    )


def orphaned_invocations() -> list[Invocation]:
    """Running records claimed by a worker that is no longer alive."""
    if _database_just_started():
        return []
    return _orphans()


def _orphans() -> list[Invocation]:
    live = _live_workers()
    return list(
        Invocation.objects.filter(status=InvocationStatus.RUNNING)
        .exclude(worker="")
        .exclude(worker__in=live)
        .select_related("function")
        .only("request_id", "invocation_type", "attempts", "worker", "function__owner")[:500]
    )


def invocation_requeue(*, request_id: str, worker: str | None = None) -> bool:
    """Put a running record back in the queue and publish it again; False if it was no
    longer running (on `worker`, when given). The attempt it had counts."""
    from invocations.services import _publish

    running = Invocation.objects.filter(pk=request_id, status=InvocationStatus.RUNNING)
    if worker is not None:
        running = running.filter(worker=worker)
    requeued = running.update(status=InvocationStatus.QUEUED, worker="", started_at=None)
    if not requeued:
        return False
    invocation_type = Invocation.objects.values_list("invocation_type", flat=True).get(
        pk=request_id
    )
    try:
        _publish(uuid.UUID(str(request_id)), caller_waits=invocation_type != InvocationType.EVENT)
    except Exception:
        # The record is queued: the sweeper publishes it again later.
        logger.warning("could not publish requeued invocation %s", request_id, exc_info=True)
    return True


def invocation_fail_worker_lost(*, request_id: str, worker: str, detail: str = "") -> bool:
    """End a running record whose worker is gone with a platform error (ServiceException)."""
    return bool(
        Invocation.objects.filter(
            pk=request_id, status=InvocationStatus.RUNNING, worker=worker
        ).update(**platform_failure_fields(request_id, f"{WORKER_LOST_MESSAGE}{detail}"))
    )


def free_concurrency_of(invocation: Invocation) -> None:
    """Free the concurrency slot the ended invocation held (else it ends at its deadline)."""
    from invocations import concurrency

    try:
        concurrency.release(
            request_id=str(invocation.request_id),
            function_id=invocation.function_id,
            owner_id=invocation.function.owner_id,
        )
    except Exception:
        logger.warning("could not free the slot of %s", invocation.request_id, exc_info=True)


def give_up_event(request_id: str) -> None:
    from invocations.async_delivery import async_event_give_up

    try:
        async_event_give_up(request_id=request_id)
    except Exception:
        logger.exception("could not hand event %s to its failure targets", request_id)


def invocations_hand_back_orphans() -> dict[str, int]:
    """Requeue the asynchronous invocations of dead workers and fail the synchronous ones.

    An asynchronous event whose attempts keep killing their worker (a poison message) is
    failed after STRATUS_WORKER_LOST_MAX_ATTEMPTS instead of looping."""
    counts = {"orphans_requeued": 0, "orphans_failed": 0, "messages_requeued": 0}
    if _database_just_started():
        return counts
    if lane.enabled():
        # Messages a dead worker took off the lane but had not finished: whatever it had
        # claimed is handled below, and a second delivery of a claimed record does nothing.
        counts["messages_requeued"] = lane.requeue_taken_by_dead_workers(set(_live_workers()))
    for invocation in _orphans():
        request_id = str(invocation.request_id)
        retry = (
            invocation.invocation_type == InvocationType.EVENT
            and invocation.attempts < settings.STRATUS_WORKER_LOST_MAX_ATTEMPTS
        )
        if retry and invocation_requeue(request_id=request_id, worker=invocation.worker):
            counts["orphans_requeued"] += 1
            logger.warning(
                "invocation %s lost its worker %s: requeued", request_id, invocation.worker
            )
            continue
        detail = (
            ""
            if invocation.invocation_type != InvocationType.EVENT
            else (f" ({invocation.attempts} attempts)")
        )
        if invocation_fail_worker_lost(
            request_id=request_id, worker=invocation.worker, detail=detail
        ):
            counts["orphans_failed"] += 1
            logger.warning(
                "invocation %s lost its worker %s: failed", request_id, invocation.worker
            )
            free_concurrency_of(invocation)
            if invocation.invocation_type == InvocationType.EVENT:
                give_up_event(request_id)
    WorkerHeartbeat.objects.filter(last_seen__lt=Now() - FORGET_WORKERS_AFTER).delete()
    return counts
