from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_init, worker_shutdown
from django.db.backends.signals import connection_created

from lib.db import relax_session_durability


@shared_task(name="invocations.tasks.run_invocation_task", acks_late=True)
def run_invocation_task(request_id: str, job: dict[str, Any] | None = None) -> object:
    from invocations.services import invocation_execute

    return invocation_execute(request_id=request_id, job=job)


@shared_task(name="invocations.tasks.sweep_invocations_task", ignore_result=True)
def sweep_invocations_task() -> dict[str, int]:
    from invocations.services import invocation_sweep

    return invocation_sweep()


@worker_init.connect
def _relax_worker_commits(**_: object) -> None:
    # Everything a worker writes can be lost in a Postgres crash without harm: see
    # lib.db.relax_commit_durability.
    connection_created.connect(relax_session_durability)


@worker_shutdown.connect
def _stop_environments(**_: object) -> None:
    from invocations.environments import shutdown_pool

    shutdown_pool()
