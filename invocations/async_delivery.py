"""What happens to an asynchronous (Event) invocation around each attempt on the worker.

Before it runs: an event older than its maximum age is dropped. After it ran: success ends
it; a function error is retried after Lambda's delays (1, then 2 minutes) while retries and
age allow, else it ends as RetriesExhausted or EventAgeExceeded; a throttle or a platform
failure (the function did not run) is retried with a growing delay and costs no retry.
An ended event's invocation record goes to the on-success or on-failure destination, and a
failed event to the dead-letter target too. The one invocation record carries it all: the
attempt count, the next attempt's time and how it ended.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.celery import app as celery_app
from console.selectors import account_for_user
from functions.destinations import parse_function_target
from functions.models import Function
from invocations.async_config import AsyncPolicy, async_policy
from invocations.executor import ExecutionResult
from invocations.function_snapshot import FunctionSnapshot
from invocations.models import AsyncCondition, Invocation, InvocationStatus, InvocationType
from invocations.recorder import metric_dimensions
from monitoring.services import MetricSample, metric_samples_record

logger = logging.getLogger(__name__)

LATEST = "$LATEST"
RETRY_DELAYS_SECONDS = (60.0, 120.0)
THROTTLE_BACKOFF_MAX_SECONDS = 300.0
# Lambda stops a chain of invocations caused by one event after 16 of them.
MAX_CHAIN_DEPTH = 16
# Errors the worker reports when the function never ran (no capacity, no environment).
_NOT_RUN_ERRORS = frozenset({"TooManyRequestsException", "ServiceException"})
_DLQ_ERROR_MESSAGE_BYTES = 1024
DESTINATION_SOURCE = "destination"
DEAD_LETTER_SOURCE = "dead-letter"


class DeliveryRefused(Exception):
    """The target cannot take the record (missing, another account, a loop)."""


def is_async(job: dict[str, Any]) -> bool:
    return job.get("invocation_type") == InvocationType.EVENT


def _ran(result: ExecutionResult) -> bool:
    return result.succeeded or not (
        result.error_type in _NOT_RUN_ERRORS and not result.log_stream_name
    )


def _lambda_timestamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Outcome:
    """What follows an attempt: an ending (`condition`) or a retry in `retry_in` seconds.
    `runs` is how many times the function has run for the event."""

    runs: int
    ran: bool
    condition: AsyncCondition | None = None
    retry_in: float = 0.0


def _ending_samples(condition: AsyncCondition) -> list[MetricSample]:
    """Counted once per event, when it ends: Stratus counts an event as received there, at
    the minute it was accepted, so that no retry counts it twice."""
    samples = [MetricSample("AsyncEventsReceived", 1)]
    if condition != AsyncCondition.SUCCESS:
        samples.append(MetricSample("AsyncEventsDropped", 1))
    return samples


@dataclass
class AsyncAttempt:
    """One attempt at an Event invocation, from its claim to what follows it."""

    request_id: str
    job: dict[str, Any]
    snapshot: FunctionSnapshot
    accepted_at: datetime
    started_at: datetime
    runs_before: int
    chain_depth: int
    policy: AsyncPolicy

    @classmethod
    def begin(
        cls, *, request_id: str, job: dict[str, Any], snapshot: FunctionSnapshot
    ) -> AsyncAttempt:
        """Called once the record is claimed (its attempt count already includes this one)."""
        row = (
            Invocation.objects.filter(pk=request_id).values("attempts", "chain_depth").first()
        ) or {"attempts": 1, "chain_depth": 0}
        return cls(
            request_id=request_id,
            job=job,
            snapshot=snapshot,
            accepted_at=datetime.fromisoformat(job["accepted_at"]),
            started_at=timezone.now(),
            runs_before=max(0, row["attempts"] - 1),
            chain_depth=row["chain_depth"],
            policy=async_policy(function_id=snapshot.function_id, qualifier=job["qualifier"]),
        )

    @property
    def age(self) -> timedelta:
        return self.started_at - self.accepted_at

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=self.policy.maximum_event_age_in_seconds)

    @property
    def expired(self) -> bool:
        return self.age >= self.max_age

    # --- before the run -------------------------------------------------------------------

    def drop_expired(self) -> None:
        """The event waited longer than its maximum age: it ends without running."""
        message = (
            f"RequestId: {self.request_id} Error: the event was dropped after "
            f"{self.age.total_seconds():.0f} s in the queue (maximum age of event: "
            f"{self.policy.maximum_event_age_in_seconds} s)"
        )
        Invocation.objects.filter(pk=self.request_id, status=InvocationStatus.RUNNING).update(
            status=InvocationStatus.FAILED,
            attempts=F("attempts") - 1,
            error_type=AsyncCondition.EVENT_AGE_EXCEEDED.value,
            error_message=message,
            async_condition=AsyncCondition.EVENT_AGE_EXCEEDED,
            next_attempt_at=None,
            finished_at=timezone.now(),
        )
        logger.info("event %s dropped: %s", self.request_id, message)
        self._record_metrics(_ending_samples(AsyncCondition.EVENT_AGE_EXCEEDED))
        self._deliver_failure(AsyncCondition.EVENT_AGE_EXCEEDED, None, self.runs_before)

    # --- after the run --------------------------------------------------------------------

    def decide(self, result: ExecutionResult) -> Outcome:
        """What follows the attempt: decided before it is recorded, so that its metrics go
        in the same statement as the attempt's."""
        ran = _ran(result)
        runs = self.runs_before + (1 if ran else 0)
        if result.succeeded:
            return Outcome(runs=runs, ran=ran, condition=AsyncCondition.SUCCESS)
        # Without a broker every retry runs at once, so a platform failure spends a retry
        # there instead of looping.
        spends_retry = ran or bool(celery_app.conf.task_always_eager)
        if spends_retry and runs > self.policy.maximum_retry_attempts:
            return Outcome(runs=runs, ran=ran, condition=AsyncCondition.RETRIES_EXHAUSTED)
        delay = self._retry_delay(runs) if ran else self._backoff_delay()
        if timezone.now() + timedelta(seconds=delay) - self.accepted_at >= self.max_age:
            return Outcome(runs=runs, ran=ran, condition=AsyncCondition.EVENT_AGE_EXCEEDED)
        return Outcome(runs=runs, ran=ran, retry_in=delay)

    def samples(self, result: ExecutionResult, outcome: Outcome) -> tuple[MetricSample, ...]:
        """The attempt's asynchronous metrics, recorded with its other datapoints."""
        samples = []
        if outcome.ran:
            samples.append(MetricSample("AsyncEventAge", self.age.total_seconds() * 1000))
        if outcome.condition is not None:
            samples += _ending_samples(outcome.condition)
        return tuple(samples)

    def follow(self, result: ExecutionResult, outcome: Outcome) -> None:
        """Carry out the outcome once the attempt is recorded."""
        if outcome.condition is None:
            self._requeue(outcome.retry_in, ran=outcome.ran)
        elif outcome.condition == AsyncCondition.SUCCESS:
            self._deliver_record(
                self.policy.on_success, AsyncCondition.SUCCESS, result, outcome.runs
            )
        else:
            Invocation.objects.filter(pk=self.request_id).update(async_condition=outcome.condition)
            self._deliver_failure(outcome.condition, result, outcome.runs)

    @staticmethod
    def _retry_delay(runs: int) -> float:
        base = RETRY_DELAYS_SECONDS[min(runs, len(RETRY_DELAYS_SECONDS)) - 1]
        return base * settings.STRATUS_ASYNC_RETRY_DELAY_SCALE

    def _backoff_delay(self) -> float:
        # Lambda retries system errors backing off from 1 s to 5 minutes: the event's age
        # roughly doubles each time.
        return min(THROTTLE_BACKOFF_MAX_SECONDS, max(1.0, self.age.total_seconds()))

    def _requeue(self, delay: float, *, ran: bool) -> None:
        from invocations.tasks import run_invocation_task

        eager = bool(celery_app.conf.task_always_eager)
        next_attempt_at = timezone.now() + timedelta(seconds=0 if eager else delay)
        requeued = Invocation.objects.filter(
            pk=self.request_id,
            status__in=(InvocationStatus.FAILED, InvocationStatus.SUCCEEDED),
        ).update(
            status=InvocationStatus.QUEUED,
            next_attempt_at=next_attempt_at,
            finished_at=None,
            # A throttled attempt did not invoke the function: it does not count.
            attempts=F("attempts") - (0 if ran else 1),
        )
        if not requeued:
            return
        logger.info("event %s: retry in %.2f s", self.request_id, delay)
        run_invocation_task.apply_async(
            args=(self.request_id, self.job),
            task_id=self.request_id,
            ignore_result=True,
            countdown=0 if eager else delay,
        )

    def _deliver_failure(
        self, condition: AsyncCondition, result: ExecutionResult | None, runs: int
    ) -> None:
        """The event is given up: its record goes to the on-failure destination and the
        event to the dead-letter target (Lambda sends to both when both are set)."""
        logger.info("event %s ended: %s after %d invocations", self.request_id, condition, runs)
        self._deliver_record(self.policy.on_failure, condition, result, runs)
        if self.policy.dead_letter_target:
            self._dead_letter(result)

    # --- delivery -------------------------------------------------------------------------

    def invocation_record(
        self, condition: AsyncCondition, result: ExecutionResult | None, runs: int
    ) -> dict[str, Any]:
        """Lambda's invocation record, as destinations receive it."""
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": _lambda_timestamp(timezone.now()),
            "requestContext": {
                "requestId": self.request_id,
                "functionArn": self.snapshot.arn,
                "condition": condition.value,
                "approximateInvokeCount": runs,
            },
            "requestPayload": _json_or_text(self.job["payload"]),
        }
        if result is not None and _ran(result):
            context: dict[str, Any] = {"statusCode": 200, "executedVersion": self.snapshot.version}
            if not result.succeeded:
                context["functionError"] = "Unhandled"
            record["responseContext"] = context
            record["responsePayload"] = _json_or_text(result.response.decode("utf-8", "replace"))
        return record

    def _deliver_record(
        self,
        target_arn: str,
        condition: AsyncCondition,
        result: ExecutionResult | None,
        runs: int,
    ) -> None:
        if not target_arn:
            return
        record = self.invocation_record(condition, result, runs)
        if not self._submit(target_arn, record, source=DESTINATION_SOURCE):
            self._record_metrics([MetricSample("DestinationDeliveryFailures", 1)])

    def dead_letter_event(self, result: ExecutionResult | None) -> dict[str, Any]:
        """The event as a function consuming an SQS dead-letter queue would receive it: the
        original event as the body, Lambda's RequestID, ErrorCode and ErrorMessage as
        message attributes."""
        error_message = result.error_message if result is not None else "EventAgeExceeded"
        body = self.job["payload"]
        now_ms = str(int(timezone.now().timestamp() * 1000))

        def attribute(value: str) -> dict[str, Any]:
            return {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }

        return {
            "Records": [
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": "",
                    "body": body,
                    "attributes": {
                        "ApproximateReceiveCount": "1",
                        "SentTimestamp": now_ms,
                        "ApproximateFirstReceiveTimestamp": now_ms,
                    },
                    "messageAttributes": {
                        "RequestID": attribute(self.request_id),
                        "ErrorCode": attribute("200"),
                        "ErrorMessage": attribute(
                            error_message.encode()[:_DLQ_ERROR_MESSAGE_BYTES].decode(
                                "utf-8", "ignore"
                            )
                        ),
                    },
                    "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                    "eventSource": "stratus:dead-letter",
                    "eventSourceARN": self.policy.dead_letter_target,
                    "awsRegion": settings.STRATUS_REGION,
                }
            ]
        }

    def _dead_letter(self, result: ExecutionResult | None) -> None:
        event = self.dead_letter_event(result)
        if not self._submit(self.policy.dead_letter_target, event, source=DEAD_LETTER_SOURCE):
            self._record_metrics([MetricSample("DeadLetterErrors", 1)])

    def _submit(self, target_arn: str, event: dict[str, Any], *, source: str) -> bool:
        """Invoke the target function asynchronously with the event; False (logged) when
        that is not possible. Nothing here may stop the worker."""
        from invocations.services import invocation_submit

        try:
            function, qualifier = self._target(target_arn)
            with transaction.atomic():
                delivered = invocation_submit(
                    function=function,
                    payload=json.dumps(event),
                    invocation_type=InvocationType.EVENT,
                    source=source,
                    qualifier=qualifier,
                )
                # In the same transaction: the task is published only once this is written.
                Invocation.objects.filter(pk=delivered.pk).update(chain_depth=self.chain_depth + 1)
        except Exception as exc:  # a failed delivery is counted, never raised
            logger.warning(
                "event %s: %s delivery to %s failed: %s", self.request_id, source, target_arn, exc
            )
            return False
        logger.info(
            "event %s: %s delivered to %s as %s",
            self.request_id,
            source,
            target_arn,
            delivered.request_id,
        )
        return True

    def _target(self, arn: str) -> tuple[Function, str]:
        target = parse_function_target(arn)
        owner = Function.objects.select_related("owner").get(pk=self.snapshot.function_id).owner
        if (
            target.account_id != account_for_user(owner).account_id
            or target.region != settings.STRATUS_REGION
        ):
            raise DeliveryRefused(f"{arn} is not a function of the owner's account")
        function = Function.objects.filter(owner_id=owner.pk, name=target.name).first()
        if function is None:
            raise DeliveryRefused(f"function {target.name} does not exist")
        if self.chain_depth + 1 >= MAX_CHAIN_DEPTH:
            raise DeliveryRefused(
                f"recursive loop: {MAX_CHAIN_DEPTH} invocations in a chain caused by one event"
            )
        return function, target.qualifier or LATEST

    def _record_metrics(self, samples: list[MetricSample]) -> None:
        if not samples:
            return
        try:
            metric_samples_record(
                owner_id=self.snapshot.owner_id,
                dimensions=metric_dimensions(self.snapshot, self.job["qualifier"]),
                at=self.accepted_at,
                samples=samples,
            )
        except Exception:  # metrics must not stop the event's handling
            logger.exception("event %s: could not record %s", self.request_id, samples)


def async_event_give_up(*, request_id: str) -> None:
    """An event ended outside an attempt (its workers kept dying): count it and send it to
    the on-failure destination and the dead-letter target as RetriesExhausted."""
    from invocations.services import job_from_database

    job = job_from_database(request_id)
    if job is None:
        return
    attempt = AsyncAttempt.begin(
        request_id=request_id, job=job, snapshot=FunctionSnapshot(**job["snapshot"])
    )
    condition = AsyncCondition.RETRIES_EXHAUSTED
    Invocation.objects.filter(pk=request_id).update(async_condition=condition)
    attempt._record_metrics(_ending_samples(condition))
    attempt._deliver_failure(condition, None, attempt.runs_before + 1)
