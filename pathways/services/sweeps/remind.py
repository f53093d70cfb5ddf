"""The reminder sweep: available, workable tasks due soon notify their assignee or their role pool."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from pathways.choices import NotificationKind
from pathways.models import CareTeamMember, Notification, Task
from pathways.services.notifications import NotificationDraft, notifications_create, recipients_for, task_message
from pathways.services.sweeps._batch import WORKABLE_STATUSES, SweepReport, run_batches, setting


def tasks_remind_due_soon(
    *, now: dt.datetime | None = None, batch_size: int | None = None, max_seconds: float | None = None
) -> SweepReport:
    """The reminder sweep: available, workable tasks due within DUE_SOON_HOURS notify their assignee or pool.

    No lock is needed: a reminder is a notification row unique per (user, task), so two sweeps cannot both
    send one. Tasks already reminded are left out by the query; the rest are walked in (due_at, id) order.
    """
    now = now or timezone.now()
    horizon = now + dt.timedelta(hours=setting("DUE_SOON_HOURS"))
    size = batch_size or setting("SWEEP_BATCH_SIZE")
    report = SweepReport(name="remind", as_of=now)
    reminded = Notification.objects.filter(task=OuterRef("pk"), kind=NotificationKind.DUE_SOON)
    # A pool nobody on the care team holds has no one to remind; leaving it out in SQL keeps such tasks from
    # being re-read every minute.
    has_pool = CareTeamMember.objects.filter(
        enrollment_id=OuterRef("enrollment_id"), role=OuterRef("role"), period_end__isnull=True
    )
    after: tuple[dt.datetime, int] | None = None

    def batch() -> int:
        nonlocal after
        qs = (
            Task.objects.filter(
                status__in=WORKABLE_STATUSES, blocked_by=[], available_at__lte=now, due_at__gt=now, due_at__lte=horizon
            )
            .filter(Q(assignee__isnull=False) | Exists(has_pool))
            .exclude(Exists(reminded))
        )
        if after is not None:
            qs = qs.filter(Q(due_at__gt=after[0]) | Q(due_at=after[0], pk__gt=after[1]))
        tasks = list(qs.order_by("due_at", "pk")[:size])
        if not tasks:
            return 0
        with transaction.atomic():
            recipients = recipients_for(tasks)
            drafts = [
                NotificationDraft(
                    user_id=user_id,
                    task_id=task.pk,
                    kind=NotificationKind.DUE_SOON,
                    dedupe_key=f"task:{task.pk}:due_soon",
                    message=task_message(task, "Due soon"),
                )
                for task in tasks
                for user_id in recipients[task.pk].workers
            ]
            report.notifications += len(notifications_create(drafts=drafts, now=now))
        after = (tasks[-1].due_at, tasks[-1].pk)
        return len(tasks)

    return run_batches(report, batch_size=size, max_seconds=max_seconds, batch=batch)
