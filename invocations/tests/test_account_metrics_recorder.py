"""Account-level datapoints (no dimension) an invocation writes beside its function's: the
Postgres statement and the ORM path record the same, a throttle records none, and the
counts reach the recorder from the lease through the synchronous and the event paths."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from functions.models import Function
from invocations.executor import ExecutionResult, LogLine
from invocations.function_snapshot import FunctionSnapshot
from invocations.models import Invocation
from invocations.recorder import (
    THROTTLED_ERROR_TYPE,
    FinishedInvocation,
    _record_with_orm,
    record_invocation,
)
from invocations.services import invocation_execute, invocation_submit
from invocations.tests.concurrency_helpers import forget_all_leases
from invocations.tests.helpers import make_function
from monitoring.models import LogEvent, MetricDatapoint
from monitoring.services import log_stream_id

pytestmark = pytest.mark.django_db

ACCEPTED_AT = datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)
HELLO = """
    def lambda_handler(event, context):
        return "hi"
"""

Recorder = Callable[..., None]


def running_record(snapshot: FunctionSnapshot, finished: FinishedInvocation) -> None:
    """The record a worker finishes: the recorder writes logs and datapoints only with it."""
    function = Function.objects.filter(owner_id=snapshot.owner_id, name=snapshot.name).first()
    if function is None:
        function = make_function(User.objects.get(pk=snapshot.owner_id), HELLO, name=snapshot.name)
    Invocation.objects.create(
        request_id=finished.request_id,
        function=function,
        function_name=function.name,
        payload="{}",
        code_sha256=function.code_sha256,
        memory_size=128,
        timeout=3,
        status="running",
    )


def in_one_statement_on_postgres(
    *, snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> None:
    """The worker's path on Postgres: everything in one statement."""
    if connection.vendor != "postgresql":
        pytest.fail("This path needs Postgres: set DATABASE_URL to a Postgres database.")
    running_record(snapshot, finished)
    with CaptureQueriesContext(connection) as queries:
        record_invocation(snapshot=snapshot, result=result, finished=finished)
    assert len(queries) == 1


def with_the_orm(
    *, snapshot: FunctionSnapshot, result: ExecutionResult, finished: FinishedInvocation
) -> None:
    """The path of every other database (the embedded mode's SQLite)."""
    running_record(snapshot, finished)
    _record_with_orm(snapshot, result, finished)


@pytest.fixture(params=[in_one_statement_on_postgres, with_the_orm], ids=["postgres", "orm"])
def recorder(request: pytest.FixtureRequest) -> Recorder:
    recorder: Recorder = request.param
    return recorder


def snapshot_of(user: User, name: str) -> FunctionSnapshot:
    return FunctionSnapshot(
        function_id=1,
        owner_id=user.pk,
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        version="$LATEST",
        revision_id="r1",
        runtime="python3.11",
        handler="lambda_function.lambda_handler",
        memory_size=128,
        timeout=3,
        ephemeral_storage=512,
        code_sha256_hex="00",
        code_sha256="AA==",
    )


def result(*, error_type: str = "") -> ExecutionResult:
    return ExecutionResult(
        succeeded=not error_type,
        response=b'"hi"',
        error_type=error_type,
        error_message="",
        duration_ms=1.5,
        billed_duration_ms=2,
        init_duration_ms=None,
        max_memory_used_mb=30,
        log_stream_name="",
    )


def finished(
    *,
    concurrency: int,
    account: int | None,
    unreserved: int | None,
    at: datetime = ACCEPTED_AT,
) -> FinishedInvocation:
    return FinishedInvocation(
        request_id=str(uuid.uuid4()),
        qualifier="$LATEST",
        accepted_at=at,
        finished_at=at + timedelta(seconds=1),
        concurrency=concurrency,
        account_concurrency=account,
        unreserved_concurrency=unreserved,
    )


def account_points(metric: str) -> list[tuple[datetime, float, float, float, float]]:
    """(minute, sample count, sum, minimum, maximum) of an account-level metric."""
    return list(
        MetricDatapoint.objects.filter(metric_name=metric, dimension_name="", dimension_value="")
        .order_by("period_start")
        .values_list("period_start", "sample_count", "sum", "minimum", "maximum")
    )


def test_account_samples_fold_into_datapoints_with_no_dimension(user, recorder):
    unreserved_fn, reserved_fn = snapshot_of(user, "shared"), snapshot_of(user, "own")
    minute = ACCEPTED_AT.replace(second=0)

    recorder(
        snapshot=unreserved_fn,
        result=result(),
        finished=finished(concurrency=1, account=3, unreserved=2),
    )
    recorder(
        snapshot=reserved_fn,
        result=result(),
        finished=finished(concurrency=2, account=5, unreserved=None),
    )
    recorder(
        snapshot=unreserved_fn,
        result=result(),
        finished=finished(
            concurrency=1, account=1, unreserved=1, at=ACCEPTED_AT + timedelta(minutes=1)
        ),
    )

    assert account_points("ConcurrentExecutions") == [
        (minute, 2, 8, 3, 5),
        (minute + timedelta(minutes=1), 1, 1, 1, 1),
    ]
    # Only the functions without reserved concurrency are sampled.
    assert account_points("UnreservedConcurrentExecutions") == [
        (minute, 1, 2, 2, 2),
        (minute + timedelta(minutes=1), 1, 1, 1, 1),
    ]
    # The function's own datapoints keep the function's count.
    own = MetricDatapoint.objects.get(
        metric_name="ConcurrentExecutions", dimension_name="FunctionName", dimension_value="own"
    )
    assert (own.sample_count, own.maximum) == (1, 2)
    assert not MetricDatapoint.objects.filter(dimension_name="", metric_name="Invocations").exists()


def test_a_throttle_records_no_account_sample(user, recorder):
    recorder(
        snapshot=snapshot_of(user, "busy"),
        result=result(error_type=THROTTLED_ERROR_TYPE),
        finished=finished(concurrency=4, account=4, unreserved=4),
    )

    assert account_points("ConcurrentExecutions") == []
    assert account_points("UnreservedConcurrentExecutions") == []
    throttles = MetricDatapoint.objects.get(metric_name="Throttles", dimension_value="busy")
    assert throttles.sum == 1


def test_unknown_counts_record_no_account_sample(user, recorder):
    """A record republished from the database carries no counts from its admission."""
    recorder(
        snapshot=snapshot_of(user, "lost"),
        result=result(),
        finished=finished(concurrency=1, account=None, unreserved=None),
    )

    assert account_points("ConcurrentExecutions") == []
    assert (
        MetricDatapoint.objects.get(
            metric_name="ConcurrentExecutions", dimension_value="lost"
        ).maximum
        == 1
    )


def account_totals(metric: str) -> tuple[float, float, float | None]:
    """Samples, sum and maximum of an account-level metric over every minute."""
    points = account_points(metric)
    maximum = max(point[4] for point in points) if points else None
    return sum(point[1] for point in points), sum(point[2] for point in points), maximum


def test_synchronous_calls_record_the_counts_of_their_admission(
    user, django_capture_on_commit_callbacks
):
    forget_all_leases()
    shared = make_function(user, HELLO, name="shared")
    own = make_function(user, HELLO, name="own")
    Function.objects.filter(pk=own.pk).update(reserved_concurrency=2)
    own.refresh_from_db()
    # Both are admitted before either runs: the second call sees two in flight.
    with django_capture_on_commit_callbacks() as publish:
        first = invocation_submit(function=shared, payload="{}")
        second = invocation_submit(function=own, payload="{}")

    for callback in publish:
        callback()

    assert Invocation.objects.get(pk=first.pk).status == "succeeded"
    assert Invocation.objects.get(pk=second.pk).status == "succeeded"
    assert account_totals("ConcurrentExecutions") == (2, 3, 2)
    assert account_totals("UnreservedConcurrentExecutions") == (1, 1, 1)


def test_an_event_records_the_counts_its_worker_was_admitted_with(
    user, django_capture_on_commit_callbacks
):
    forget_all_leases()
    shared = make_function(user, HELLO, name="shared")
    # A synchronous call accepted but not yet run keeps its lease meanwhile.
    with django_capture_on_commit_callbacks() as publish:
        invocation_submit(function=shared, payload="{}")
    event = invocation_submit(function=shared, payload="{}", invocation_type="Event")

    invocation_execute(request_id=str(event.pk))

    assert account_totals("ConcurrentExecutions") == (1, 2, 2)
    assert account_totals("UnreservedConcurrentExecutions") == (1, 2, 2)
    publish[0]()
    assert account_totals("ConcurrentExecutions") == (2, 3, 2)
    assert account_totals("UnreservedConcurrentExecutions") == (2, 3, 2)


def test_a_finish_tried_again_writes_its_logs_and_datapoints_once(user, recorder):
    snapshot = snapshot_of(user, "retried")
    ran = result()
    ran.log_stream_name = "2025/06/01/[$LATEST]abc"
    ran.log_lines = [LogLine(ACCEPTED_AT, "START"), LogLine(ACCEPTED_AT, "END")]
    done = finished(concurrency=1, account=1, unreserved=1)
    # The stream exists already (its first invocation creates it, in statements of its own).
    log_stream_id(
        owner_id=user.pk, group_name=snapshot.log_group_name, stream_name=ran.log_stream_name
    )

    recorder(snapshot=snapshot, result=ran, finished=done)
    # A second try, as after a lost connection whose commit had landed.
    record_invocation(snapshot=snapshot, result=ran, finished=done)

    assert LogEvent.objects.filter(request_id=done.request_id).count() == 2
    invocations = MetricDatapoint.objects.get(metric_name="Invocations", dimension_value="retried")
    assert invocations.sample_count == 1
    assert account_points("ConcurrentExecutions")[0][1] == 1
    assert Invocation.objects.get(pk=done.request_id).status == "succeeded"
