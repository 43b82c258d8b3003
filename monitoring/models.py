from __future__ import annotations

from django.conf import settings
from django.db import models


class LogGroup(models.Model):
    """A CloudWatch-style log group, e.g. /aws/lambda/my-function. It outlives the function."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="log_groups"
    )
    name = models.CharField(max_length=512)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="log_group_name_per_owner")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LogStream(models.Model):
    """One execution environment's log stream: YYYY/MM/DD/[version]<environment id>."""

    group = models.ForeignKey(LogGroup, on_delete=models.CASCADE, related_name="streams")
    name = models.CharField(max_length=512)
    created_at = models.DateTimeField(auto_now_add=True)
    last_event_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="log_stream_name_per_group")
        ]
        ordering = ["-last_event_at"]

    def __str__(self) -> str:
        return self.name


class LogEvent(models.Model):
    stream = models.ForeignKey(LogStream, on_delete=models.CASCADE, related_name="events")
    timestamp = models.DateTimeField()
    message = models.TextField()
    request_id = models.UUIDField(null=True, blank=True, db_index=True)
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["stream", "timestamp"], name="log_event_stream_time")]
        ordering = ["timestamp", "id"]

    def __str__(self) -> str:
        return self.message[:80]


class MetricDatapoint(models.Model):
    """A one-minute aggregate of one metric for one dimension (namespace AWS/Lambda).

    Charts read these rows; they never scan raw invocations.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="metric_datapoints"
    )
    metric_name = models.CharField(max_length=64)
    dimension_name = models.CharField(max_length=32)
    dimension_value = models.CharField(max_length=256)
    period_start = models.DateTimeField()
    sample_count = models.FloatField(default=0)
    sum = models.FloatField(default=0)
    minimum = models.FloatField()
    maximum = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "owner",
                    "metric_name",
                    "dimension_name",
                    "dimension_value",
                    "period_start",
                ],
                name="metric_datapoint_per_minute",
            )
        ]
        indexes = [
            # The Dashboard merges the datapoints of all the account's functions per period;
            # the constraint's index orders them by function first, so it cannot find one
            # period's without reading every function's whole history.
            models.Index(
                fields=["owner", "metric_name", "period_start"],
                condition=models.Q(dimension_name="FunctionName"),
                name="metric_all_functions_period",
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric_name}[{self.dimension_value}]@{self.period_start:%H:%M}"
