"""The invocation path: accept (write the record, publish the task), execute (on the
worker), record (logs and metrics), and wait (for synchronous callers)."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from datetime import timedelta
from functools import lru_cache

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.celery import app as celery_app
from console.selectors import account_for_user, function_arn
from functions.models import Function
from invocations.environments import FunctionSnapshot, get_pool
from invocations.errors import InvalidRequestContent, InvocationWaitTimeout, RequestTooLarge
from invocations.executor import ExecutionResult, InvocationRequest, execute
from invocations.models import Invocation, InvocationStatus, InvocationType
from lib.db import relax_commit_durability
from monitoring.services import MetricSample, log_events_append, metric_samples_record

logger = logging.getLogger(__name__)

MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024
# How long a synchronous caller waits beyond the function timeout (cold start, queueing).
WAIT_MARGIN_SECONDS = 30.0
# A running invocation this long past its timeout has lost its worker.
RUNNING_GRACE_SECONDS = 60


def _validated_payload(payload: bytes | str, invocation_type: str) -> str:
    raw = payload.encode() if isinstance(payload, str) else payload
    limit = (
        MAX_ASYNC_PAYLOAD_BYTES
        if invocation_type == InvocationType.EVENT
        else MAX_SYNC_PAYLOAD_BYTES
    )
    if len(raw) > limit:
        raise RequestTooLarge(
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
        )
    if not raw.strip():
        return "{}"
    try:
        text = raw.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from exc
    return text


def invocation_submit(
    *,
    function: Function,
    payload: bytes | str,
    invocation_type: str = InvocationType.REQUEST_RESPONSE,
    source: str = "console",
    client_context: str = "",
) -> Invocation:
    """Accept an invocation: the record is written (queued) before the task is published."""
    text = _validated_payload(payload, invocation_type)
    with transaction.atomic():
        if invocation_type == InvocationType.REQUEST_RESPONSE:
            relax_commit_durability()
        invocation = Invocation.objects.create(
            function=function,
            function_name=function.name,
            invocation_type=invocation_type,
            source=source,
            payload=text,
            client_context=client_context,
            code_sha256=function.code_sha256,
            memory_size=function.memory_size,
            timeout=function.timeout,
        )
        transaction.on_commit(lambda: _publish(invocation.request_id))
    return invocation


def _publish(request_id: uuid.UUID) -> None:
    from invocations.tasks import run_invocation_task

    run_invocation_task.apply_async(args=(str(request_id),), task_id=str(request_id))


def invocation_wait(*, invocation: Invocation, timeout: float | None = None) -> Invocation:
    """Block until the invocation is terminal and return the fresh record."""
    if timeout is None:
        timeout = invocation.timeout + WAIT_MARGIN_SECONDS
    if celery_app.conf.task_always_eager:
        # In-process mode: if the task has not run yet (its transaction is still open, as in
        # tests), run it here; a record already taken is left alone.
        invocation_execute(request_id=str(invocation.request_id))
    else:
        result: AsyncResult[str] = AsyncResult(str(invocation.request_id), app=celery_app)
        with contextlib.suppress(CeleryTimeoutError):
            result.get(timeout=timeout, propagate=False, interval=0.05)
    invocation.refresh_from_db()
    if not invocation.is_terminal:
        raise InvocationWaitTimeout(
            f"Invocation {invocation.request_id} is still {invocation.status} after {timeout:.0f} s"
        )
    return invocation


@lru_cache(maxsize=4096)
def _account_id(owner_id: int) -> str:
    from django.contrib.auth import get_user_model

    return account_for_user(get_user_model()(pk=owner_id)).account_id


def _snapshot(function: Function, version: str) -> FunctionSnapshot:
    account_id = _account_id(function.owner_id)
    return FunctionSnapshot(
        function_id=function.pk,
        name=function.name,
        arn=function_arn(account_id=account_id, function_name=function.name, qualifier=version),
        version=version,
        revision_id=str(function.revision_id),
        runtime=function.runtime,
        handler=function.handler,
        memory_size=function.memory_size,
        timeout=function.timeout,
        ephemeral_storage=function.ephemeral_storage,
        code_sha256_hex=function.code_id,
        environment=dict(function.environment),
    )


def invocation_execute(*, request_id: str) -> str:
    """Run a queued invocation once and record it. A record that is not queued (already
    taken by another delivery of the same message) is left alone."""
    taken = Invocation.objects.filter(pk=request_id, status=InvocationStatus.QUEUED).update(
        status=InvocationStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not taken:
        status = Invocation.objects.filter(pk=request_id).values_list("status", flat=True).first()
        return status or "missing"
    invocation = Invocation.objects.select_related("function").get(pk=request_id)
    function = invocation.function
    concurrency = Invocation.objects.filter(
        function_id=function.pk, status=InvocationStatus.RUNNING
    ).count()
    snapshot = _snapshot(function, invocation.executed_version)
    try:
        result = execute(
            get_pool(),
            snapshot,
            InvocationRequest(
                request_id=request_id,
                payload=invocation.payload.encode(),
                client_context=invocation.client_context,
            ),
        )
    except Exception as exc:
        logger.exception("invocation %s could not run", request_id)
        result = _platform_failure(request_id, snapshot, exc)
    invocation_record(
        invocation=invocation, snapshot=snapshot, result=result, concurrency=concurrency
    )
    return invocation.status


def _platform_failure(
    request_id: str, snapshot: FunctionSnapshot, exc: Exception
) -> ExecutionResult:
    message = f"RequestId: {request_id} Error: could not start the execution environment: {exc}"
    return ExecutionResult(
        succeeded=False,
        response=json.dumps({"errorMessage": message, "errorType": "ServiceException"}).encode(),
        error_type="ServiceException",
        error_message=message,
        duration_ms=0.0,
        billed_duration_ms=0,
        init_duration_ms=None,
        max_memory_used_mb=0,
        log_stream_name="",
    )


def invocation_record(
    *,
    invocation: Invocation,
    snapshot: FunctionSnapshot,
    result: ExecutionResult,
    concurrency: int,
) -> None:
    """Finish the record and write its log events and metric datapoints, in one transaction."""
    now = timezone.now()
    invocation.status = InvocationStatus.SUCCEEDED if result.succeeded else InvocationStatus.FAILED
    invocation.response = result.response.decode("utf-8", "replace")
    invocation.error_type = result.error_type
    invocation.error_message = result.error_message
    invocation.duration_ms = result.duration_ms
    invocation.billed_duration_ms = result.billed_duration_ms
    invocation.init_duration_ms = result.init_duration_ms
    invocation.max_memory_used_mb = result.max_memory_used_mb
    invocation.log_stream_name = result.log_stream_name
    invocation.code_sha256 = invocation.function.code_sha256
    invocation.memory_size = snapshot.memory_size
    invocation.finished_at = now
    dimensions = [("FunctionName", snapshot.name)]
    if invocation.qualifier != "$LATEST":
        dimensions.append(("Resource", f"{snapshot.name}:{invocation.qualifier}"))
    with transaction.atomic():
        invocation.save(
            update_fields=[
                "status",
                "response",
                "error_type",
                "error_message",
                "duration_ms",
                "billed_duration_ms",
                "init_duration_ms",
                "max_memory_used_mb",
                "log_stream_name",
                "code_sha256",
                "memory_size",
                "finished_at",
            ]
        )
        if result.log_stream_name:
            log_events_append(
                owner_id=invocation.function.owner_id,
                group_name=snapshot.log_group_name,
                stream_name=result.log_stream_name,
                request_id=str(invocation.request_id),
                lines=[(line.timestamp, line.message) for line in result.log_lines],
            )
        metric_samples_record(
            owner_id=invocation.function.owner_id,
            dimensions=dimensions,
            at=invocation.created_at,
            samples=[
                MetricSample("Invocations", 1),
                MetricSample("Errors", 0 if result.succeeded else 1),
                MetricSample("Duration", result.duration_ms),
                MetricSample("ConcurrentExecutions", concurrency),
            ],
        )


def invocation_sweep() -> dict[str, int]:
    """Republish queued records whose message was lost; fail running ones past their
    deadline (their worker died)."""
    now = timezone.now()
    stale_queued = list(
        Invocation.objects.filter(
            status=InvocationStatus.QUEUED,
            created_at__lt=now - timedelta(seconds=settings.STRATUS_REQUEUE_AFTER),
        ).values_list("request_id", flat=True)[:500]
    )
    for request_id in stale_queued:
        _publish(request_id)
    overdue = 0
    running = Invocation.objects.filter(status=InvocationStatus.RUNNING).only(
        "request_id", "started_at", "timeout"
    )
    for invocation in running.iterator():
        assert invocation.started_at is not None
        deadline = invocation.started_at + timedelta(
            seconds=invocation.timeout + RUNNING_GRACE_SECONDS
        )
        if deadline < now:
            message = (
                f"RequestId: {invocation.request_id} Error: the worker running this invocation "
                "stopped before it finished"
            )
            overdue += Invocation.objects.filter(
                pk=invocation.pk, status=InvocationStatus.RUNNING
            ).update(
                status=InvocationStatus.FAILED,
                error_type="ServiceException",
                error_message=message,
                response=json.dumps({"errorMessage": message, "errorType": "ServiceException"}),
                finished_at=now,
            )
    return {"requeued": len(stale_queued), "failed": overdue}
