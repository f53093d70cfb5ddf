"""Task creation: new tasks enter role pools, unassigned, each with its 'created' TaskEvent.

Scheduling, rules and enrollment create tasks through here; status changes go through services/tasks.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from pathways.choices import TaskEventKind
from pathways.models import Task, TaskEvent, TaskTemplate, User


@dataclass(frozen=True)
class NewTask:
    """What a new task needs besides its enrollment; built from a template or ad hoc."""

    title: str
    prong: str
    role: str
    priority: str
    available_at: dt.datetime
    due_at: dt.datetime
    template: TaskTemplate | None = None
    # End of a session-bound occurrence's window; None: never expires (docs/scheduling.md, "Missed sessions").
    expires_at: dt.datetime | None = None
    schedule_id: int | None = None
    occurrence: int | None = None
    rule_code: str = ""
    instructions: str = ""
    blocked_by: tuple[str, ...] = ()
    # Set when one tasks_create call spans enrollments (the materializer sweep); else the call's enrollment_id.
    enrollment_id: int | None = None


def tasks_create(
    *,
    enrollment_id: int | None = None,
    new_tasks: Iterable[NewTask],
    actor: User | None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> list[Task]:
    """Create tasks (in role pools, unassigned) with their 'created' events, in bulk. Caller holds the transaction.

    A scheduled occurrence that already exists violates the unique (schedule, occurrence) constraint and
    raises IntegrityError: callers that may race run this inside a savepoint.
    """
    now = now or timezone.now()
    rows = [
        Task(
            enrollment_id=_enrollment_of(n, enrollment_id),
            template=n.template,
            schedule_id=n.schedule_id,
            occurrence=n.occurrence,
            rule_code=n.rule_code,
            title=n.title,
            prong=n.prong,
            role=n.role,
            priority=n.priority,
            available_at=n.available_at,
            due_at=n.due_at,
            expires_at=n.expires_at,
            blocked_by=list(n.blocked_by),
            instructions=n.instructions,
        )
        for n in new_tasks
    ]
    if not rows:
        return []
    created = Task.objects.bulk_create(rows)
    TaskEvent.objects.bulk_create(
        TaskEvent(
            task=t,
            kind=TaskEventKind.CREATED,
            at=now,
            actor=actor,
            to_status=t.status,
            reason=reason,
            data={
                "template": t.template.code if t.template else None,
                "occurrence": t.occurrence,
                "rule": t.rule_code or None,
                "blocked_by": t.blocked_by,
            },
        )
        for t in created
    )
    return created


def _enrollment_of(new: NewTask, default: int | None) -> int:
    enrollment_id = new.enrollment_id or default
    if enrollment_id is None:
        raise ValueError("tasks_create needs an enrollment_id, on the call or on every NewTask")
    return enrollment_id


def new_task_from_template(
    template: TaskTemplate,
    *,
    available_at: dt.datetime,
    completed_codes: set[str],
    schedule_id: int | None = None,
    occurrence: int | None = None,
    priority: str | None = None,
    due_within_hours: int | None = None,
    rule_code: str = "",
    scheduled: bool = False,
) -> NewTask:
    """A NewTask for one occurrence of a template, waiting on any prerequisite not yet completed.

    A scheduled occurrence of a session-bound template (`expires_after_hours`) gets `expires_at`, the end of its
    window; a task a rule creates from the template (no schedule) is asked for now and does not expire.
    `scheduled`: the occurrence is a schedule's even without `schedule_id` (a new schedule's day-0 work is
    planned before the schedule is written, services/schedules.py `_plans`; its id is set afterwards).
    """
    window = dt.timedelta(hours=due_within_hours or template.due_within_hours)
    expires = template.expires_after_hours if scheduled or schedule_id is not None else None
    return NewTask(
        title=template.title,
        prong=template.prong,
        role=template.role,
        priority=priority or template.priority,
        available_at=available_at,
        due_at=available_at + window,
        expires_at=available_at + dt.timedelta(hours=expires) if expires else None,
        template=template,
        schedule_id=schedule_id,
        occurrence=occurrence,
        rule_code=rule_code,
        instructions=template.instructions,
        blocked_by=tuple(c for c in template.prerequisites if c not in completed_codes),
    )
