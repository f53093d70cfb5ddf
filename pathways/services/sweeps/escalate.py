"""The escalation sweep: overdue workable tasks go to level 1, and to level 2 (priority raised) later."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pathways.choices import PRIORITY_RANK, NotificationKind, Priority, TaskEventKind
from pathways.models import Task, TaskEvent
from pathways.services.notifications import (
    NotificationDraft,
    Recipients,
    notifications_create,
    recipients_for,
    task_message,
)
from pathways.services.sweeps._batch import WORKABLE_STATUSES, SweepReport, run_batches, setting
from pathways.services.tasks import TaskChange, task_changes_record

_PRIORITY_ORDER = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__)


def _raised(priority: str) -> str:
    rank = PRIORITY_RANK.get(Priority(priority), 0)
    return _PRIORITY_ORDER[min(rank + 1, len(_PRIORITY_ORDER) - 1)]


def _escalation(task: Task, *, to_level: int, now: dt.datetime) -> tuple[TaskChange, list[int]]:
    """Move one locked task up to `to_level`, one level at a time (unsaved); returns the change and the levels.

    Escalation changes neither status nor assignee, so it does not pass through the transition function; its
    version bump and events are written by task_changes_record like every other task change.
    """
    change = TaskChange(task, {"escalation_level", "escalated_at"})
    levels = []
    while task.escalation_level < to_level:
        task.escalation_level += 1
        task.escalated_at = now
        levels.append(task.escalation_level)
        change.events.append(
            TaskEvent(
                task=task,
                kind=TaskEventKind.ESCALATED,
                at=now,
                reason="overdue" if task.escalation_level == 1 else "still open past the second threshold",
                data={"level": task.escalation_level, "due_at": task.due_at.isoformat()},
            )
        )
        if task.escalation_level == 2:
            before, task.priority = task.priority, _raised(task.priority)
            change.fields.add("priority")
            change.events.append(
                TaskEvent(
                    task=task,
                    kind=TaskEventKind.UPDATED,
                    at=now,
                    reason="escalation raised the priority",
                    data={"priority": {"from": before, "to": task.priority}},
                )
            )
    return change, levels


def _escalation_drafts(task: Task, levels: list[int], recipients: dict[int, Recipients]) -> list[NotificationDraft]:
    who = recipients[task.pk]
    drafts = []
    for level in levels:
        if level == 1:
            drafts += [
                NotificationDraft(
                    user_id=user_id,
                    task_id=task.pk,
                    kind=NotificationKind.OVERDUE,
                    dedupe_key=f"task:{task.pk}:overdue",
                    message=task_message(task, "Overdue"),
                )
                for user_id in who.workers
            ]
        headline = "Escalated (overdue)" if level == 1 else f"Escalated again, priority now {task.priority}"
        drafts += [
            NotificationDraft(
                user_id=user_id,
                task_id=task.pk,
                kind=NotificationKind.ESCALATED,
                dedupe_key=f"task:{task.pk}:escalated:{level}",
                message=task_message(task, headline),
            )
            for user_id in who.coordinators
        ]
    return drafts


def tasks_escalate_overdue(
    *, now: dt.datetime | None = None, batch_size: int | None = None, max_seconds: float | None = None
) -> SweepReport:
    """The escalation sweep: overdue workable tasks go to level 1, and to level 2 (priority raised) later.

    Level 1 (past due): escalation marker + TaskEvent, "overdue" to the assignee or the role pool on the care
    team, "escalated" to the coordinators. Level 2 (still open ESCALATION_SECOND_THRESHOLD_HOURS past due):
    priority up one step, coordinators told again. The level marker is checked on the locked row, so a
    re-run or a concurrent sweep never escalates twice; notifications are unique per (user, event) as well.
    Held tasks and tasks still waiting for a prerequisite are not escalated.
    """
    now = now or timezone.now()
    second = now - dt.timedelta(hours=setting("ESCALATION_SECOND_THRESHOLD_HOURS"))
    size = batch_size or setting("SWEEP_BATCH_SIZE")
    report = SweepReport(name="escalate", as_of=now, details={"level_1": 0, "level_2": 0})

    def batch() -> int:
        with transaction.atomic():
            tasks = list(
                Task.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status__in=WORKABLE_STATUSES, blocked_by=[], due_at__lt=now)
                # Session work whose window has ended is missed, not overdue: the expiry sweep closes it.
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
                # "Still open 24 h past due" includes exactly 24 h (docs/scheduling.md; tested at the edge).
                .filter(Q(escalation_level=0) | Q(escalation_level=1, due_at__lte=second))
                .order_by("due_at", "pk")[:size]
            )
            if not tasks:
                return 0
            changes: list[TaskChange] = []
            reached: dict[int, list[int]] = {}
            for task in tasks:
                change, levels = _escalation(task, to_level=2 if task.due_at <= second else 1, now=now)
                changes.append(change)
                reached[task.pk] = levels
                for level in levels:
                    report.details[f"level_{level}"] += 1
            task_changes_record(changes)
            recipients = recipients_for(tasks)
            drafts = [d for task in tasks for d in _escalation_drafts(task, reached[task.pk], recipients)]
            report.notifications += len(notifications_create(drafts=drafts, now=now))
        return len(tasks)

    return run_batches(report, batch_size=size, max_seconds=max_seconds, batch=batch)
