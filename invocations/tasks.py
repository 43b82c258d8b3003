from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import shared_task
from celery.exceptions import Ignore
from celery.signals import worker_init, worker_ready, worker_shutdown, worker_shutting_down
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.backends.signals import connection_created

from invocations.lane import LaneConsumer
from invocations.liveness import Heartbeat, new_worker_id
from lib.db import relax_session_durability

logger = logging.getLogger(__name__)

# Exit status of a worker whose drain ran out of time (it handed its invocations back).
DRAIN_TIMED_OUT_EXIT_STATUS = 75

_heartbeat: Heartbeat | None = None
_lane_consumer: LaneConsumer | None = None


# While the database restarts the claim cannot be written: try again shortly (the record
# stays queued, and a synchronous caller keeps waiting for this task's result).
@shared_task(
    name="invocations.tasks.run_invocation_task",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=8,
    max_retries=8,
)
def run_invocation_task(request_id: str, job: dict[str, Any] | None = None) -> object:
    from invocations.services import invocation_execute

    outcome = invocation_execute(request_id=request_id, job=job)
    if not isinstance(outcome, dict):
        # Another delivery of this message ran (or is running) the invocation.
        raise Ignore()
    return outcome


@shared_task(name="invocations.tasks.sweep_invocations_task", ignore_result=True)
def sweep_invocations_task() -> dict[str, int]:
    from invocations.services import invocation_sweep

    return invocation_sweep()


@shared_task(name="invocations.tasks.hand_back_orphans_task", ignore_result=True)
def hand_back_orphans_task() -> dict[str, int]:
    from invocations.liveness import invocations_hand_back_orphans

    return invocations_hand_back_orphans()


@worker_init.connect
def _relax_worker_commits(**_: object) -> None:
    # What this trades away: see the setting.
    if settings.STRATUS_WORKER_RELAXED_COMMITS:
        connection_created.connect(relax_session_durability)


@worker_ready.connect
def _start_heartbeat_and_lane(sender: object = None, **_: object) -> None:
    from invocations.services import invocation_execute

    global _heartbeat, _lane_consumer
    _heartbeat = Heartbeat(new_worker_id(), interval=settings.STRATUS_WORKER_HEARTBEAT)
    _heartbeat.start()
    logger.info("worker %s is alive", _heartbeat.worker_id)
    if settings.STRATUS_LANE_REDIS_URL:
        # As many invocations at once from the lane as the worker runs Celery tasks.
        controller = getattr(sender, "controller", None)
        threads = int(getattr(controller, "concurrency", 0) or settings.STRATUS_LANE_THREADS)
        _lane_consumer = LaneConsumer(
            worker_id=_heartbeat.worker_id, threads=threads, execute=invocation_execute
        )
        _lane_consumer.start()


@worker_shutting_down.connect
def _bound_the_drain(how: str = "", **_: object) -> None:
    # Celery's warm shutdown stops taking tasks and waits for the running ones as long as
    # they take (a function may run 15 minutes). Past the bound, leave: unregistering tells
    # the sweeper at once that this worker's running invocations are to be handed back.
    if _lane_consumer is not None:
        _lane_consumer.stop_taking()
    if how != "Warm":
        return
    timer = threading.Timer(settings.STRATUS_WORKER_DRAIN_TIMEOUT, _give_up_draining)
    timer.daemon = True
    timer.start()
    logger.info(
        "draining: running invocations have %.0f s to finish",
        settings.STRATUS_WORKER_DRAIN_TIMEOUT,
    )


def _give_up_draining() -> None:
    logger.error("drain timed out; handing the running invocations back")
    if _heartbeat is not None:
        _heartbeat.stop()
    for handler in logging.getLogger().handlers:
        handler.flush()
    # At once, so that no invocation records anything after it was handed back. What the
    # runtimes left behind is removed by the next worker that starts on this host.
    os._exit(DRAIN_TIMED_OUT_EXIT_STATUS)


@worker_shutdown.connect
def _stop_environments(**_: object) -> None:
    from invocations.environments import shutdown_pool

    # Sent once the running Celery tasks are done; the lane's are waited for here. Then
    # nothing of this worker runs any more.
    if _lane_consumer is not None:
        _lane_consumer.join()
    shutdown_pool()
    if _heartbeat is not None:
        _heartbeat.stop()
