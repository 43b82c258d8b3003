"""The invocation path: accept (write the record, publish the task), execute (on the
worker), record (logs and metrics), and wait (for synchronous callers)."""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from console.celery import app as celery_app
from console.selectors import account_for_user, function_arn
from functions.alias_services import function_alias_pick_version
from functions.models import Function, FunctionVersion
from functions.selectors import function_alias_get, function_version_get
from invocations import concurrency, lane, provisioning, throttling
from invocations.async_delivery import AsyncAttempt
from invocations.environments import EnvironmentCapacityError, get_pool
from invocations.errors import (
    InvalidRequestContent,
    InvocationLost,
    InvocationWaitTimeout,
    RequestTooLarge,
    VersionNotFound,
)
from invocations.executor import ExecutionResult, InvocationRequest, execute
from invocations.function_snapshot import FunctionSnapshot
from invocations.liveness import (
    current_worker_id,
    free_concurrency_of,
    give_up_event,
    invocation_fail_worker_lost,
    invocations_hand_back_orphans,
)
from invocations.models import (
    TERMINAL_STATUSES,
    Invocation,
    InvocationStatus,
    InvocationType,
    platform_failure_fields,
)
from invocations.recorder import (
    FinishedInvocation,
    record_fields,
    record_invocation,
    record_throttle,
)
from lib.db import insert_row
from monitoring.selectors import log_messages_for_invocation

logger = logging.getLogger(__name__)

LATEST = "$LATEST"
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024
# How long a synchronous caller waits beyond the function timeout (cold start, queueing).
WAIT_MARGIN_SECONDS = 30.0
# A running invocation this long past its timeout has lost its worker.
RUNNING_GRACE_SECONDS = 60
# How often a synchronous caller looks at the record while it waits for the worker's answer:
# a record the sweeper ended (its worker died) gets no answer.
RECORD_POLL_SECONDS = 1.0
ABANDONED_MESSAGE = (
    "the invocation was lost on its way to a worker, and its caller stopped waiting before "
    "it could run"
)


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
    snapshot = _snapshot(function, version, invoked_as=qualifier)
    request_id = uuid.uuid4()
    # A synchronous call takes its concurrency now and is refused (Throttled, nothing
    # recorded) when there is none; an Event is accepted and waits for it on the worker.
    lease = None
    if invocation_type == InvocationType.REQUEST_RESPONSE:
        lease = _admit_caller(function, snapshot, request_id=str(request_id), qualifier=qualifier)
    caller_waits = invocation_type == InvocationType.REQUEST_RESPONSE
    invocation = Invocation(
        request_id=request_id,
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
    try:
        # An Event is answered 202 once its record is durable; a synchronous caller that
        # loses its record in a database crash gets an error, so its commit need not wait.
        insert_row(invocation, relaxed=caller_waits)
        job = _job(invocation, snapshot)
        if lease is not None:
            job["concurrency"] = lease.function_in_flight
            job["account_concurrency"] = lease.account_in_flight
            job["unreserved_concurrency"] = lease.unreserved_in_flight
        # At once, or when the caller's own transaction commits.
        transaction.on_commit(lambda: _publish_accepted(invocation, job, caller_waits))
    except BaseException:
        if lease is not None:
            concurrency.release(
                request_id=lease.request_id, function_id=function.pk, owner_id=function.owner_id
            )
        raise
    return invocation


def _publish_accepted(invocation: Invocation, job: dict[str, Any], caller_waits: bool) -> None:
    try:
        _publish(invocation.request_id, job, caller_waits=caller_waits)
    except redis.RedisError:
        if not caller_waits:
            # The event is accepted (its record is durable): the sweeper publishes it once
            # Redis answers again.
            logger.warning("event %s is queued but not yet published", invocation.request_id)
            return
        _fail_unrunnable(
            invocation.pk, "it could not be queued: Redis does not answer", "ServiceException"
        )
        raise


def _admit_caller(
    function: Function, snapshot: FunctionSnapshot, *, request_id: str, qualifier: str
) -> concurrency.Lease:
    try:
        return concurrency.admit(
            concurrency.limits_for_function(function),
            request_id=request_id,
            timeout=snapshot.timeout,
        )
    except concurrency.Throttled:
        record_throttle(snapshot=snapshot, qualifier=qualifier, at=timezone.now())
        raise


_SNAPSHOT_FIELDS = tuple(field.name for field in dataclasses.fields(FunctionSnapshot))


def _job(invocation: Invocation, snapshot: FunctionSnapshot) -> dict[str, Any]:
    """What the worker needs to run the invocation without reading the database."""
    return {
        # Shallow (dataclasses.asdict deep-copies): the fields are plain values and one dict.
        "snapshot": {name: getattr(snapshot, name) for name in _SNAPSHOT_FIELDS},
        "payload": invocation.payload,
        "client_context": invocation.client_context,
        "qualifier": invocation.qualifier,
        "accepted_at": invocation.created_at.isoformat(),
        "invocation_type": invocation.invocation_type,
    }


def _publish(
    request_id: uuid.UUID, job: dict[str, Any] | None = None, *, caller_waits: bool = True
) -> None:
    if lane.enabled():
        lane.publish(str(request_id), job, caller_waits=caller_waits)
        return
    from invocations.tasks import run_invocation_task

    # Embedded mode: Celery runs the task in this process. The short argsrepr spares Celery
    # a repr of the whole job (payload included).
    run_invocation_task.apply_async(
        args=(str(request_id), job), task_id=str(request_id), **_short_argsrepr(request_id)
    )


def _short_argsrepr(request_id: uuid.UUID) -> dict[str, Any]:
    # Passed through **: the Celery type stubs do not list argsrepr.
    return {"argsrepr": f"('{request_id}', ...)"}


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
        outcome = _wait_for_outcome(invocation, timeout)
    if isinstance(outcome, dict) and outcome.get("request_id") == str(invocation.request_id):
        for name, value in outcome["fields"].items():
            setattr(invocation, name, value)
        invocation.finished_at = datetime.fromisoformat(outcome["finished_at"])
        setattr(invocation, "log_messages", outcome["log_messages"])  # noqa: B010
    else:
        try:
            invocation.refresh_from_db()
        except Invocation.DoesNotExist as exc:
            raise InvocationLost(
                f"RequestId: {invocation.request_id} Error: the invocation's record was lost "
                "in a database failure before it ran; try again"
            ) from exc
    if not invocation.is_terminal:
        raise InvocationWaitTimeout(
            f"Invocation {invocation.request_id} is still {invocation.status} after {timeout:.0f} s"
        )
    return invocation


def _wait_for_outcome(invocation: Invocation, timeout: float) -> object:
    """The worker's answer, or None once the record is terminal without one (the sweeper
    ended it: its worker died) or the time is up."""
    request_id = str(invocation.request_id)
    deadline = time.monotonic() + timeout
    while True:
        _release_database_connection()
        remaining = deadline - time.monotonic()
        answer = lane.wait_for_answer(request_id, min(RECORD_POLL_SECONDS, remaining))
        if answer is not None:
            return answer
        if remaining <= RECORD_POLL_SECONDS or _is_terminal_in_database(invocation):
            return None


def _release_database_connection() -> None:
    """Give the connection back to the pool while waiting, which may take up to 15 minutes:
    otherwise every waiting caller holds one, and a web process with more threads than its
    pool has connections stalls. The next query takes one again."""
    if not connection.in_atomic_block:
        connection.close()


def _is_terminal_in_database(invocation: Invocation) -> bool:
    try:
        status = Invocation.objects.values_list("status", flat=True).get(pk=invocation.pk)
    except Invocation.DoesNotExist:
        # Lost with its insert in a database crash: there is nothing to wait for.
        return True
    except DatabaseError:
        # The database is restarting: keep waiting for the worker's answer.
        return False
    return status in TERMINAL_STATUSES


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
UPDATE {table} SET status = %s, started_at = %s, attempts = attempts + 1, worker = %s
WHERE request_id = %s AND status = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
RETURNING 1
"""


def _db_uuid(value: str) -> Any:
    """A request id as this database stores UUIDs (SQLite keeps them as hex text)."""
    field = Invocation._meta.get_field("request_id")
    return field.get_db_prep_value(uuid.UUID(value), connection)


def _claim(request_id: str) -> bool:
    """Mark the record running on this worker if it is still queued; False if it was not
    queued (another delivery of the same message took it, or it already ended)."""
    table = connection.ops.quote_name(Invocation._meta.db_table)
    running, queued = InvocationStatus.RUNNING.value, InvocationStatus.QUEUED.value
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL.format(table=table),
            [running, now, current_worker_id(), _db_uuid(request_id), queued, now],
        )
        return cursor.fetchone() is not None


def _running_count(function_id: int) -> int:
    """How many invocations of the function are running, for a record whose concurrency
    was not measured when it was admitted (one the sweeper republished)."""
    return Invocation.objects.filter(
        function_id=function_id, status=InvocationStatus.RUNNING
    ).count()


def job_from_database(request_id: str) -> dict[str, Any] | None:
    invocation = Invocation.objects.select_related("function").filter(pk=request_id).first()
    if invocation is None:
        return None
    version = None
    if invocation.executed_version != LATEST:
        version = function_version_get(
            function=invocation.function, version=invocation.executed_version
        )
        if version is None:
            _fail_unrunnable(invocation.pk, f"version {invocation.executed_version} was deleted")
            return None
    return _job(
        invocation, _snapshot(invocation.function, version, invoked_as=invocation.qualifier)
    )


def _fail_unrunnable(
    request_id: uuid.UUID | str, reason: str, error_type: str = "ResourceNotFoundException"
) -> int:
    """End a queued invocation that cannot run: its code is gone (its version was deleted
    while it waited), it could not be queued, or its caller left before it could run."""
    return Invocation.objects.filter(pk=request_id, status=InvocationStatus.QUEUED).update(
        **platform_failure_fields(request_id, reason, error_type)
    )


# Deliveries of each request id inside invocation_execute in this worker process, so that a
# retry of a delivery that failed on a database error can tell its own earlier claim from
# another delivery's. Counted, not just noted: the delivery that came first may leave (it
# found the record taken) while one that came later still runs it.
_executing: collections.Counter[str] = collections.Counter()
_executing_lock = threading.Lock()


def invocation_execute(*, request_id: str, job: dict[str, Any] | None = None) -> object:
    """Run a queued invocation once and record it; return what a waiting caller needs.

    A record that is not queued (another delivery of the same message took it) is left
    alone, and its status is returned instead. The exception: a record this worker process
    claimed in an attempt that a database error cut short (the claim may even have
    committed unseen), which no other delivery in this process has now: it is taken again.
    """
    with _executing_lock:
        _executing[request_id] += 1
    try:
        return _execute(request_id=request_id, job=job)
    finally:
        with _executing_lock:
            _executing[request_id] -= 1
            if not _executing[request_id]:
                del _executing[request_id]


def _alone_here(request_id: str) -> bool:
    """Whether no other delivery in this process has the request now (asked once this one
    found the record taken: one that came later may have claimed it in between)."""
    with _executing_lock:
        return _executing[request_id] == 1


def _reclaim_own(request_id: str) -> bool:
    """Take back a record left running on this worker by a failed attempt."""
    taken = Invocation.objects.filter(
        pk=request_id, status=InvocationStatus.RUNNING, worker=current_worker_id()
    ).update(started_at=timezone.now())
    if taken:
        logger.warning("invocation %s: taking back this worker's interrupted claim", request_id)
    return bool(taken)


def _execute(*, request_id: str, job: dict[str, Any] | None) -> object:
    job = job or job_from_database(request_id)
    if job is None:
        return "missing"
    snapshot = FunctionSnapshot(**job["snapshot"])
    is_event = job.get("invocation_type") == InvocationType.EVENT
    lease = None
    if is_event:
        try:
            lease = _admit_event(request_id, snapshot)
        except concurrency.Throttled:
            # An event too old to wait longer goes on, to be dropped as EventAgeExceeded.
            if not throttling.event_expired(job, snapshot):
                throttling.event_requeue_throttled(
                    request_id=request_id, job=job, snapshot=snapshot, claimed=False
                )
                return InvocationStatus.QUEUED.value
    claimed = _claim(request_id) or (_alone_here(request_id) and _reclaim_own(request_id))
    if not claimed:
        if lease is not None and lease.new:
            _release(request_id, snapshot)
        status = Invocation.objects.filter(pk=request_id).values_list("status", flat=True).first()
        return status or "missing"
    account_in_flight = job.get("account_concurrency")
    unreserved_in_flight = job.get("unreserved_concurrency")
    if lease is not None:
        in_flight = lease.function_in_flight
        account_in_flight = lease.account_in_flight
        unreserved_in_flight = lease.unreserved_in_flight
    elif job.get("concurrency"):
        in_flight = int(job["concurrency"])
    else:
        in_flight = _running_count(snapshot.function_id)
    attempt = None
    if is_event:
        attempt = AsyncAttempt.begin(request_id=request_id, job=job, snapshot=snapshot)
    if attempt is not None and attempt.expired:
        if lease is not None:
            _release(request_id, snapshot)
        attempt.drop_expired()
        return InvocationStatus.FAILED.value
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
        # Load, not a fault: nothing ran, and a retry later can succeed. An Event goes back
        # to the queue; a synchronous caller gets a 429.
        logger.warning("invocation %s throttled: %s", request_id, exc)
        if is_event:
            _release(request_id, snapshot)
            throttling.event_requeue_throttled(
                request_id=request_id, job=job, snapshot=snapshot, claimed=True
            )
            return InvocationStatus.QUEUED.value
        result = _platform_failure(
            request_id, snapshot, f"Rate Exceeded. {exc}", error_type="TooManyRequestsException"
        )
    except Exception as exc:
        logger.exception("invocation %s could not run", request_id)
        result = _platform_failure(
            request_id, snapshot, f"could not start the execution environment: {exc}"
        )
    outcome = attempt.decide(result) if attempt is not None else None
    finished = FinishedInvocation(
        request_id=request_id,
        qualifier=job["qualifier"],
        accepted_at=datetime.fromisoformat(job["accepted_at"]),
        finished_at=timezone.now(),
        concurrency=in_flight,
        account_concurrency=account_in_flight,
        unreserved_concurrency=unreserved_in_flight,
        **provisioning.invocation_provisioning(snapshot, result),
        extra_samples=attempt.samples(result, outcome) if attempt and outcome else (),
    )
    record_invocation(snapshot=snapshot, result=result, finished=finished)
    _release(request_id, snapshot)
    if attempt is not None and outcome is not None:
        attempt.follow(result, outcome)
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


def _admit_event(request_id: str, snapshot: FunctionSnapshot) -> concurrency.Lease:
    limits = concurrency.current_limits(
        function_id=snapshot.function_id, owner_id=snapshot.owner_id
    )
    return concurrency.admit(limits, request_id=request_id, timeout=snapshot.timeout)


def _release(request_id: str, snapshot: FunctionSnapshot) -> None:
    concurrency.release(
        request_id=request_id, function_id=snapshot.function_id, owner_id=snapshot.owner_id
    )


def _capacity_wait(job: dict[str, Any]) -> float:
    """How long the worker may wait for an execution environment: the setting, but never
    past the moment a synchronous caller stops waiting for its cold start. Nobody waits
    for an event, so its retries, however late, may wait as long as the setting."""
    if job.get("invocation_type") == InvocationType.EVENT:
        return float(settings.STRATUS_EE_CAPACITY_WAIT)
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
    failure = platform_failure_fields(request_id, detail, error_type)
    return ExecutionResult(
        succeeded=False,
        response=str(failure["response"]).encode(),
        error_type=error_type,
        error_message=str(failure["error_message"]),
        duration_ms=0.0,
        billed_duration_ms=0,
        init_duration_ms=None,
        max_memory_used_mb=0,
        log_stream_name="",
    )


def _fail_overdue(invocation: Invocation, now: datetime) -> bool:
    """End a record still running long past its deadline: its worker lost track of it. Its
    concurrency is freed, and an event goes to its failure destination."""
    assert invocation.started_at is not None
    deadline = invocation.started_at + timedelta(seconds=invocation.timeout + RUNNING_GRACE_SECONDS)
    if deadline >= now or not invocation_fail_worker_lost(
        request_id=str(invocation.request_id), worker=invocation.worker
    ):
        return False
    free_concurrency_of(invocation)
    if invocation.invocation_type == InvocationType.EVENT:
        give_up_event(str(invocation.request_id))
    return True


def invocation_sweep() -> dict[str, int]:
    """Republish queued records whose message was lost; fail running ones past their
    deadline (their worker died)."""
    now = timezone.now()
    requeue_before = now - timedelta(seconds=settings.STRATUS_REQUEUE_AFTER)
    # An event waiting for a retry (or a throttle's backoff) is lost only once its next
    # attempt is that much overdue.
    stale = Invocation.objects.filter(
        Q(next_attempt_at__isnull=True, created_at__lt=requeue_before)
        | Q(next_attempt_at__lt=requeue_before),
        status=InvocationStatus.QUEUED,
    ).values_list("request_id", "invocation_type", "created_at", "timeout")[:500]
    stale_queued: list[tuple[uuid.UUID, str]] = []
    abandoned = 0
    for request_id, invocation_type, created_at, timeout in stale:
        caller_gone = created_at + timedelta(seconds=timeout + WAIT_MARGIN_SECONDS) < now
        if invocation_type == InvocationType.REQUEST_RESPONSE and caller_gone:
            # Lambda does not run a synchronous call its caller stopped waiting for.
            abandoned += _fail_unrunnable(request_id, ABANDONED_MESSAGE, "ServiceException")
        else:
            stale_queued.append((request_id, invocation_type))
    # Stamped as due now, so that the next sweep republishes them only if this message is
    # lost too, not a backlog's every record at every sweep.
    Invocation.objects.filter(
        pk__in=[request_id for request_id, _ in stale_queued], status=InvocationStatus.QUEUED
    ).update(next_attempt_at=now)
    for request_id, invocation_type in stale_queued:
        _publish(request_id, caller_waits=invocation_type == InvocationType.REQUEST_RESPONSE)
    # Running records of dead workers (invocations.liveness), then any still running past
    # its deadline (a live worker that lost track of it, or one claimed in the web process).
    orphans = invocations_hand_back_orphans()
    running = (
        Invocation.objects.filter(status=InvocationStatus.RUNNING)
        .select_related("function")
        .only("request_id", "started_at", "timeout", "invocation_type", "worker", "function__owner")
    )
    overdue = sum(_fail_overdue(invocation, now) for invocation in running.iterator())
    return {"requeued": len(stale_queued), "failed": overdue + abandoned, **orphans}
