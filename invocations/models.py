from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from functions.models import Function


class TestEvent(models.Model):
    """A saved test event: private to its creator, or shareable with everyone who sees the
    function."""

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="test_events")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="test_events"
    )
    name = models.CharField(max_length=25)
    payload = models.TextField()
    shareable = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["function", "name"],
                condition=models.Q(shareable=True),
                name="shareable_event_name_per_function",
            ),
            models.UniqueConstraint(
                fields=["function", "owner", "name"],
                condition=models.Q(shareable=False),
                name="private_event_name_per_owner",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class InvocationType(models.TextChoices):
    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"


class InvocationStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL_STATUSES = frozenset({InvocationStatus.SUCCEEDED, InvocationStatus.FAILED})


def platform_failure_fields(
    request_id: object, detail: str, error_type: str = "ServiceException"
) -> dict[str, object]:
    """The fields of a record that Stratus ended without an answer from the function: its
    error in Lambda's words, and the error document a caller reads."""
    message = f"RequestId: {request_id} Error: {detail}"
    return {
        "status": InvocationStatus.FAILED,
        "error_type": error_type,
        "error_message": message,
        "response": json.dumps({"errorMessage": message, "errorType": error_type}),
        "finished_at": timezone.now(),
    }


class Invocation(models.Model):
    """One accepted invocation: the source of truth from acceptance to its terminal state."""

    request_id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="invocations")
    # Kept as text so the record outlives the function's name and reads like Lambda's logs.
    function_name = models.CharField(max_length=64)
    qualifier = models.CharField(max_length=128, default="$LATEST")
    executed_version = models.CharField(max_length=16, default="$LATEST")
    invocation_type = models.CharField(
        max_length=16, choices=InvocationType.choices, default=InvocationType.REQUEST_RESPONSE
    )
    source = models.CharField(max_length=16, default="console")
    status = models.CharField(
        max_length=16, choices=InvocationStatus.choices, default=InvocationStatus.QUEUED
    )
    payload = models.TextField()
    client_context = models.TextField(blank=True)
    response = models.TextField(blank=True)
    error_type = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    code_sha256 = models.CharField(max_length=44)
    memory_size = models.PositiveIntegerField()
    timeout = models.PositiveIntegerField()
    duration_ms = models.FloatField(null=True, blank=True)
    billed_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    init_duration_ms = models.FloatField(null=True, blank=True)
    max_memory_used_mb = models.PositiveIntegerField(null=True, blank=True)
    log_stream_name = models.CharField(max_length=512, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The worker process that claimed the running attempt (WorkerHeartbeat.worker_id); empty
    # when tasks run inside the web process.
    worker = models.CharField(max_length=128, blank=True)
    # Asynchronous invocations: when a queued retry may run (None: at once), how many
    # destination deliveries led to this one (a guard against loops), and how the event
    # ended (AsyncCondition) once it has.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    chain_depth = models.PositiveSmallIntegerField(default=0)
    async_condition = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["function", "-created_at"], name="invocation_recent"),
            models.Index(fields=["status", "created_at"], name="invocation_status_age"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.request_id)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class AsyncCondition(models.TextChoices):
    """Why an asynchronous event ended, as Lambda's invocation record says it."""

    SUCCESS = "Success"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"


class EventInvokeConfig(models.Model):
    """How asynchronous invocations of one qualifier ($LATEST, a version or an alias) are
    retried and where their records go. A setting left empty takes Lambda's default."""

    function = models.ForeignKey(
        Function, on_delete=models.CASCADE, related_name="event_invoke_configs"
    )
    qualifier = models.CharField(max_length=128, default="$LATEST")
    maximum_retry_attempts = models.PositiveSmallIntegerField(null=True, blank=True)
    maximum_event_age_in_seconds = models.PositiveIntegerField(null=True, blank=True)
    on_success = models.CharField(max_length=350, blank=True)
    on_failure = models.CharField(max_length=350, blank=True)
    last_modified = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["function", "qualifier"], name="event_invoke_config_per_qualifier"
            )
        ]
        ordering = ["qualifier"]

    def __str__(self) -> str:
        return f"{self.function_id}:{self.qualifier}"


class WorkerHeartbeat(models.Model):
    """A live worker process: it refreshes `last_seen` every few seconds, and one that stops
    doing so has died with whatever it was running (see invocations.liveness)."""

    worker_id = models.CharField(max_length=128, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return self.worker_id
