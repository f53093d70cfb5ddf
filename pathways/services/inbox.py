"""The recipient's side of notifications (creating them belongs to the scheduling sweeps)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from pathways.errors import NotFound
from pathways.models import Notification, User


@transaction.atomic
def notification_mark_read(*, notification_id: int, user: User, now: dt.datetime | None = None) -> Notification:
    """Mark one of the user's notifications read; marking it again keeps the first read time."""
    try:
        notification = Notification.objects.select_for_update().get(pk=notification_id, user=user)
    except Notification.DoesNotExist as exc:
        raise NotFound(f"notification {notification_id} not found") from exc
    if notification.read_at is None:
        notification.read_at = now or timezone.now()
        notification.save(update_fields=["read_at"])
    return notification
