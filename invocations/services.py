"""The invocation path: accept (write the record, publish the task), execute (on the
worker), record (logs and metrics), and wait (for synchronous callers)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.celery import app as celery_app
from console.selectors import account_for_user, function_arn
from functions.alias_services import function_alias_pick_version
from functions.models import Function, FunctionVersion
from functions.selectors import function_alias_get, function_version_get
from invocations.environments import EnvironmentCapacityError, FunctionSnapshot, get_pool
from invocations.errors import (
    InvalidRequestContent,
    InvocationWaitTimeout,
    RequestTooLarge,
    VersionNotFound,
)
from invocations.executor import ExecutionResult, InvocationRequest, execute
from invocations.models import Invocation, InvocationStatus, InvocationType
from invocations.recorder import FinishedInvocation, record_fields, record_invocation
from lib.db import relax_commit_durability
from monitoring.selectors import log_messages_for_invocation

logger = logging.getLogger(__name__)

LATEST = "$LATEST"
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
    qualifier: str = LATEST,
) -> Invocation:
    """Accept an invocation: the record is written (queued) before the task is published.

    `qualifier` is $LATEST, a published version's number or an alias (which picks the
    version it runs by its routing weights); an unknown one raises VersionNotFound."""
    text = _validated_payload(payload, invocation_type)
    version = _version_to_run(function, qualifier)
    runs: Function | FunctionVersion = function if version is None else version
    with transaction.atomic():
        if invocation_type == InvocationType.REQUEST_RESPONSE:
            relax_commit_durability()
        invocation = Invocation.objects.create(
            function=function,
            function_name=function.name,
            qualifier=qualifier,
            executed_version=LATEST if version is None else str(version.version),
            invocation_type=invocation_type,
            source=source,
            payload=text,
            client_context=client_context,
            code_sha256=runs.code_sha256,
            memory_size=runs.memory_size,
            timeout=runs.timeout,
        )
        job = _job(invocation, _snapshot(function, version, invoked_as=qualifier))
        caller_waits = invocation_type == InvocationType.REQUEST_RESPONSE
        transaction.on_commit(
            lambda: _publish(invocation.request_id, job, caller_waits=caller_waits)
        )
    return invocation


def _job(invocation: Invocation, snapshot: FunctionSnapshot) -> dict[str, Any]:
    """What the worker needs to run the invocation without reading the database."""
    return {
        "snapshot": dataclasses.asdict(snapshot),
        "payload": invocation.payload,
        "client_context": invocation.client_context,
        "qualifier": invocation.qualifier,
        "accepted_at": invocation.created_at.isoformat(),
    }


def _publish(
    request_id: uuid.UUID, job: dict[str, Any] | None = None, *, caller_waits: bool = True
) -> None:
    from invocations.tasks import run_invocation_task

    # Only a synchronous caller reads the task's result; nobody waits for an Event's.
    run_invocation_task.apply_async(
        args=(str(request_id), job), task_id=str(request_id), ignore_result=not caller_waits
    )


def invocation_wait(*, invocation: Invocation, timeout: float | None = None) -> Invocation:
    """Block until the invocation is terminal and return it, up to date.

    The worker answers with the finished record's fields and log lines, so a synchronous
    caller reads nothing back from the database; `invocation_log_messages` gives the lines.
    """
    if timeout is None:
        timeout = invocation.timeout + WAIT_MARGIN_SECONDS
    outcome: object = None
    if celery_app.conf.task_always_eager:
        # In-process mode: if the task has not run yet (its transaction is still open, as in
        # tests), run it here; a record already taken is left alone.
        outcome = invocation_execute(request_id=str(invocation.request_id))
    else:
        result: AsyncResult[object] = AsyncResult(str(invocation.request_id), app=celery_app)
        with contextlib.suppress(CeleryTimeoutError):
            outcome = result.get(timeout=timeout, propagate=False, interval=0.05)
            # Read once: do not keep responses of up to 6 MB in the result backend.
            result.forget()
    if isinstance(outcome, dict) and outcome.get("request_id") == str(invocation.request_id):
        for name, value in outcome["fields"].items():
            setattr(invocation, name, value)
        invocation.finished_at = datetime.fromisoformat(outcome["finished_at"])
        setattr(invocation, "log_messages", outcome["log_messages"])  # noqa: B010
    else:
        invocation.refresh_from_db()
    if not invocation.is_terminal:
        raise InvocationWaitTimeout(
            f"Invocation {invocation.request_id} is still {invocation.status} after {timeout:.0f} s"
        )
    return invocation


def invocation_log_messages(*, invocation: Invocation) -> list[str]:
    """The invocation's log lines: those the worker answered with, else from the database."""
    carried: list[str] | None = getattr(invocation, "log_messages", None)
    if carried is not None:
        return carried
    return log_messages_for_invocation(request_id=invocation.request_id)


@lru_cache(maxsize=4096)
def _account_id(owner_id: int) -> str:
    from django.contrib.auth import get_user_model

    return account_for_user(get_user_model()(pk=owner_id)).account_id


def _version_to_run(function: Function, qualifier: str) -> FunctionVersion | None:
    """The version a qualifier names, an alias's pick included: None for $LATEST."""
    if qualifier == LATEST:
        return None
    number = qualifier
    if not qualifier.isdigit():
        alias = function_alias_get(function=function, name=qualifier)
        if alias is None:
            raise VersionNotFound(function.name, qualifier)
        number = function_alias_pick_version(alias=alias)
        if number == LATEST:
            return None
    version = function_version_get(function=function, version=number)
    if version is None:
        raise VersionNotFound(function.name, qualifier)
    return version


def _snapshot(
    function: Function, version: FunctionVersion | None, *, invoked_as: str
) -> FunctionSnapshot:
    """What the invocation runs: $LATEST as the function row has it, or a published
    version's own code and configuration. The ARN is the one it was invoked by (an alias's,
    when invoked through one), as Lambda's context.invoked_function_arn is."""
    account_id = _account_id(function.owner_id)
    runs: Function | FunctionVersion = function if version is None else version
    version_name = LATEST if version is None else str(version.version)
    return FunctionSnapshot(
        function_id=function.pk,
        owner_id=function.owner_id,
        name=function.name,
        arn=function_arn(account_id=account_id, function_name=function.name, qualifier=invoked_as),
        version=version_name,
        revision_id=str(runs.revision_id),
        runtime=runs.runtime,
        handler=runs.handler,
        memory_size=runs.memory_size,
        timeout=runs.timeout,
        ephemeral_storage=runs.ephemeral_storage,
        code_sha256_hex=runs.code_id,
        code_sha256=runs.code_sha256,
        environment=dict(runs.environment),
    )


_CLAIM_SQL = """
UPDATE {table} SET status = %s, started_at = %s, attempts = attempts + 1
WHERE request_id = %s AND status = %s
RETURNING 1 + (
    SELECT count(*) FROM {table}
    WHERE function_id = %s AND status = %s AND request_id <> %s
)
"""


def _db_uuid(value: str) -> Any:
    """A request id as this database stores UUIDs (SQLite keeps them as hex text)."""
    field = Invocation._meta.get_field("request_id")
    return field.get_db_prep_value(uuid.UUID(value), connection)


def _claim(request_id: str, function_id: int) -> int | None:
    """Mark the record running if it is still queued; return how many invocations of the
    function are running now (this one included), or None if it was not queued."""
    table = connection.ops.quote_name(Invocation._meta.db_table)
    running, queued = InvocationStatus.RUNNING.value, InvocationStatus.QUEUED.value
    own_id = _db_uuid(request_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL.format(table=table),
            [running, timezone.now(), own_id, queued, function_id, running, own_id],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _job_from_database(request_id: str) -> dict[str, Any] | None:
    invocation = Invocation.objects.select_related("function").filter(pk=request_id).first()
    if invocation is None:
        return None
    version = None
    if invocation.executed_version != LATEST:
        version = function_version_get(
            function=invocation.function, version=invocation.executed_version
        )
        if version is None:
            _fail_unrunnable(invocation, f"version {invocation.executed_version} was deleted")
            return None
    return _job(
        invocation, _snapshot(invocation.function, version, invoked_as=invocation.qualifier)
    )


def _fail_unrunnable(invocation: Invocation, reason: str) -> None:
    """A queued invocation whose code is gone (its version was deleted while it waited)."""
    message = f"RequestId: {invocation.request_id} Error: {reason}"
    Invocation.objects.filter(pk=invocation.pk, status=InvocationStatus.QUEUED).update(
        status=InvocationStatus.FAILED,
        error_type="ResourceNotFoundException",
        error_message=message,
        response=json.dumps({"errorMessage": message, "errorType": "ResourceNotFoundException"}),
        finished_at=timezone.now(),
    )


def invocation_execute(*, request_id: str, job: dict[str, Any] | None = None) -> object:
    """Run a queued invocation once and record it; return what a waiting caller needs.

    A record that is not queued (another delivery of the same message took it) is left
    alone, and its status is returned instead.
    """
    job = job or _job_from_database(request_id)
    if job is None:
        return "missing"
    snapshot = FunctionSnapshot(**job["snapshot"])
    concurrency = _claim(request_id, snapshot.function_id)
    if concurrency is None:
        status = Invocation.objects.filter(pk=request_id).values_list("status", flat=True).first()
        return status or "missing"
    try:
        result = execute(
            get_pool(),
            snapshot,
            InvocationRequest(
                request_id=request_id,
                payload=job["payload"].encode(),
                client_context=job["client_context"],
            ),
            acquire_timeout=_capacity_wait(job),
        )
    except EnvironmentCapacityError as exc:
        # Load, not a fault: nothing ran, and a retry later can succeed.
        logger.warning("invocation %s throttled: %s", request_id, exc)
        result = _platform_failure(
            request_id, snapshot, f"Rate Exceeded. {exc}", error_type="TooManyRequestsException"
        )
    except Exception as exc:
        logger.exception("invocation %s could not run", request_id)
        result = _platform_failure(
            request_id, snapshot, f"could not start the execution environment: {exc}"
        )
    finished = FinishedInvocation(
        request_id=request_id,
        qualifier=job["qualifier"],
        accepted_at=datetime.fromisoformat(job["accepted_at"]),
        finished_at=timezone.now(),
        concurrency=concurrency,
    )
    record_invocation(snapshot=snapshot, result=result, finished=finished)
    return {
        "request_id": request_id,
        "fields": {
            name: value
            for name, value in record_fields(snapshot, result, finished).items()
            if name != "finished_at"
        },
        "finished_at": finished.finished_at.isoformat(),
        "log_messages": [line.message for line in result.log_lines],
    }


def _capacity_wait(job: dict[str, Any]) -> float:
    """How long the worker may wait for an execution environment: the setting, but never
    past the moment a synchronous caller stops waiting for its cold start."""
    accepted_at = datetime.fromisoformat(job["accepted_at"])
    left = WAIT_MARGIN_SECONDS - (timezone.now() - accepted_at).total_seconds()
    return max(0.0, min(float(settings.STRATUS_EE_CAPACITY_WAIT), left))


def _platform_failure(
    request_id: str,
    snapshot: FunctionSnapshot,
    detail: str,
    *,
    error_type: str = "ServiceException",
) -> ExecutionResult:
    message = f"RequestId: {request_id} Error: {detail}"
    return ExecutionResult(
        succeeded=False,
        response=json.dumps({"errorMessage": message, "errorType": error_type}).encode(),
        error_type=error_type,
        error_message=message,
        duration_ms=0.0,
        billed_duration_ms=0,
        init_duration_ms=None,
        max_memory_used_mb=0,
        log_stream_name="",
    )


def invocation_sweep() -> dict[str, int]:
    """Republish queued records whose message was lost; fail running ones past their
    deadline (their worker died)."""
    now = timezone.now()
    stale_queued = list(
        Invocation.objects.filter(
            status=InvocationStatus.QUEUED,
            created_at__lt=now - timedelta(seconds=settings.STRATUS_REQUEUE_AFTER),
        ).values_list("request_id", "invocation_type")[:500]
    )
    for request_id, invocation_type in stale_queued:
        _publish(request_id, caller_waits=invocation_type == InvocationType.REQUEST_RESPONSE)
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
