"""Notification writes: in-app rows (once per user and event) and their e-mail, from an outbox.

"Never twice" is a database guarantee: Notification is unique on (user, dedupe_key), and the dedupe key names
the event (`task:42:overdue`, `task:42:escalated:2`, `task:42:assigned:v7`). Sending locks the row and returns
early when `emailed_at` is set, so a redelivered or doubly-enqueued message, or the outbox sweep racing the
per-id task, sends nothing more.

The row is the outbox: a per-id Celery task is queued on commit as the fast path, and when the broker is down
that enqueue is skipped (one log line) and the e-mail sweep (services/sweeps/email.py) sends the row later.
Messages carry the task title and ids only, never patient details.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from pathways.choices import NotificationKind, Role
from pathways.errors import NotFound
from pathways.models import CareTeamMember, Enrollment, Notification, Task, User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotificationDraft:
    """A notification to create unless the same (user, dedupe_key) already exists."""

    user_id: int
    task_id: int
    kind: str
    dedupe_key: str
    message: str


@dataclass(frozen=True)
class Recipients:
    """Who hears about one task: its assignee or role pool, and the enrollment's coordinators."""

    workers: tuple[int, ...]
    coordinators: tuple[int, ...]


def recipients_for(tasks: Sequence[Task]) -> dict[int, Recipients]:
    """Recipients per task id, in two queries for the whole batch.

    Workers: the assignee if assigned, else the current care-team members holding the task's role.
    Coordinators: the enrollment's coordinator plus current care-team members in the coordinator role.
    Inactive users are left out.
    """
    enrollment_ids = {t.enrollment_id for t in tasks}
    members: dict[tuple[int, str], set[int]] = defaultdict(set)
    for enrollment_id, user_id, role in CareTeamMember.objects.filter(
        enrollment_id__in=enrollment_ids, period_end__isnull=True, user__is_active=True
    ).values_list("enrollment_id", "user_id", "role"):
        members[(enrollment_id, role)].add(user_id)
    for enrollment_id, coordinator_id in Enrollment.objects.filter(
        pk__in=enrollment_ids, coordinator__isnull=False, coordinator__is_active=True
    ).values_list("pk", "coordinator_id"):
        members[(enrollment_id, Role.COORDINATOR)].add(coordinator_id)
    result = {}
    for task in tasks:
        workers = {task.assignee_id} if task.assignee_id else members[(task.enrollment_id, task.role)]
        result[task.pk] = Recipients(
            workers=tuple(sorted(workers)),
            coordinators=tuple(sorted(members[(task.enrollment_id, Role.COORDINATOR)])),
        )
    return result


def task_message(task: Task, headline: str) -> str:
    """The text of a notification: what happened, the task title and ids (no patient details)."""
    due = task.due_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{headline}: {task.title} (task {task.pk}, enrollment {task.enrollment_id}, due {due})"[:500]


def notifications_create(*, drafts: Iterable[NotificationDraft], now: dt.datetime) -> list[int]:
    """Create the drafts that do not exist yet; queue their e-mail for after the commit. Returns the new ids.

    Concurrent sweeps may both try the same row: the unique constraint keeps one, and the e-mail task is
    idempotent, so an e-mail queued twice is still sent once.
    """
    wanted = {(d.user_id, d.dedupe_key): d for d in drafts}
    if not wanted:
        return []
    existing = set(
        Notification.objects.filter(
            user_id__in={u for u, _ in wanted}, dedupe_key__in={k for _, k in wanted}
        ).values_list("user_id", "dedupe_key")
    )
    fresh = [d for key, d in wanted.items() if key not in existing]
    if not fresh:
        return []
    Notification.objects.bulk_create(
        [
            Notification(
                user_id=d.user_id,
                task_id=d.task_id,
                kind=d.kind,
                dedupe_key=d.dedupe_key,
                message=d.message,
                created_at=now,
            )
            for d in fresh
        ],
        ignore_conflicts=True,
    )
    fresh_keys = {(d.user_id, d.dedupe_key) for d in fresh}
    created = [
        (pk, has_email)
        for pk, user_id, key, has_email in Notification.objects.filter(
            user_id__in={d.user_id for d in fresh}, dedupe_key__in={d.dedupe_key for d in fresh}
        ).values_list("pk", "user_id", "dedupe_key", "user__email")
        if (user_id, key) in fresh_keys
    ]
    to_email = [pk for pk, email in created if email]
    if to_email:
        transaction.on_commit(lambda: _enqueue_emails(to_email))
    return [pk for pk, _ in created]


def _enqueue_emails(notification_ids: list[int]) -> None:
    from pathways.tasks import send_notification_email

    app = send_notification_email.app
    sent = 0
    try:
        # One connection attempt and no publish retries (redis-py alone would retry for ~6 s): a broker that is
        # down fails at once instead of holding the committed request; the outbox sweep is the retry.
        options = {**app.conf.broker_transport_options, "max_retries": 0}
        with app.connection_for_write(transport_options=options) as connection:
            for pk in notification_ids:
                send_notification_email.apply_async((pk,), retry=False, connection=connection)
                sent += 1
    except Exception as exc:  # any broker or network error: the rows stay unsent and the e-mail sweep sends them
        logger.warning(
            "e-mail queue unavailable (%s): %s e-mails left for the outbox sweep",
            type(exc).__name__,
            len(notification_ids) - sent,
        )


def notify_task_assigned(*, task: Task, now: dt.datetime) -> list[int]:
    """Tell a user that a task was assigned to them (one notification per assignment, keyed by version)."""
    if task.assignee_id is None:
        return []
    draft = NotificationDraft(
        user_id=task.assignee_id,
        task_id=task.pk,
        kind=NotificationKind.ASSIGNED,
        dedupe_key=f"task:{task.pk}:assigned:v{task.version}",
        message=task_message(task, "Assigned to you"),
    )
    return notifications_create(drafts=[draft], now=now)


def email_retry_delay(attempts: int) -> dt.timedelta:
    """How long the outbox waits after the `attempts`-th failed e-mail: 1, 2, 4 ... minutes, at most an hour."""
    return dt.timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


def notification_send_email(*, notification_id: int, now: dt.datetime | None = None, skip_locked: bool = False) -> str:
    """E-mail one notification unless it was already sent; returns what happened ("sent", "already sent",
    "missing", "no address", or with `skip_locked` "busy" when another sender holds the row).

    The row stays locked while the message is handed to the e-mail backend, so a second sender waits (or, with
    `skip_locked`, moves on) and then finds `emailed_at` set. An SMTP failure is counted on the row, sets
    `email_retry_at` (backoff: email_retry_delay) for the outbox sweep, and is re-raised for the caller
    (the Celery task retries it).
    """
    error: Exception | None = None
    now = now or timezone.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",), skip_locked=skip_locked)
            .select_related("user")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None:
            if skip_locked and Notification.objects.filter(pk=notification_id).exists():
                return "busy"
            return "missing"
        if notification.emailed_at is not None:
            return "already sent"
        if not notification.user.email or not notification.user.is_active:
            return "no address"
        notification.email_attempts += 1
        try:
            send_mail(
                subject=f"[Carepath] {notification.get_kind_display()}",
                message=notification.message,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[notification.user.email],
            )
        except Exception as exc:  # counted here, retried by the Celery task or the outbox sweep
            error = exc
            notification.email_retry_at = now + email_retry_delay(notification.email_attempts)
        else:
            notification.emailed_at = now
        notification.save(update_fields=["email_attempts", "emailed_at", "email_retry_at"])
    if error is not None:
        logger.warning(
            "e-mail for notification %s failed (attempt %s): %s",
            notification_id,
            notification.email_attempts,
            type(error).__name__,
        )
        raise error
    return "sent"


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


@transaction.atomic
def notifications_mark_all_read(*, user: User, now: dt.datetime | None = None) -> int:
    """Mark every unread notification of the user read (one UPDATE); returns how many were unread. Those
    already read keep their first read time."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=now or timezone.now())
