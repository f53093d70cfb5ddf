"""Login throttling state, kept in the database so that the counter is atomic across processes."""

from __future__ import annotations

from django.db import models


class LoginThrottle(models.Model):
    """Failed-login counter per key (username or client address) within a sliding window."""

    key = models.CharField(max_length=255, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"login throttle {self.pk}"
