from __future__ import annotations

from django.conf import settings
from django.db import models


class AccessKeyStatus(models.TextChoices):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


class AccessKey(models.Model):
    """A user's API credential: the id is public, the secret is stored only encrypted."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys"
    )
    access_key_id = models.CharField(max_length=20, unique=True)
    secret_encrypted = models.TextField()
    status = models.CharField(
        max_length=16, choices=AccessKeyStatus.choices, default=AccessKeyStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_region = models.CharField(max_length=32, blank=True)
    last_used_service = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.access_key_id

    @property
    def is_active(self) -> bool:
        return self.status == AccessKeyStatus.ACTIVE
