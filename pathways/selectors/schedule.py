"""What will come due for an enrollment: open tasks already made, and occurrences its schedules will make."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from pathways.choices import OPEN_TASK_STATUSES, RecurrenceKind, ScheduleStatus
from pathways.domain.recurrence import PatientCalendar, RecurrenceSpec, occurrences_between
from pathways.models import Enrollment, Schedule, Task

MAX_PREVIEW_DAYS = 366


@dataclass(frozen=True)
class UpcomingOccurrence:
    """One piece of work expected in the window: an existing open task (task_id set) or a future occurrence."""

    template: str | None
    title: str
    role: str
    prong: str
    available_at: dt.datetime
    due_at: dt.datetime
    occurrence: int | None
    task_id: int | None


def schedule_upcoming_starts(schedule: Schedule, *, cal: PatientCalendar, end: dt.datetime) -> list[dt.datetime]:
    """Start times of the occurrences an active schedule will still create before `end` (none when paused).

    One-off and after-completion schedules know only their next time (a one-off held and resumed is due at
    the resume time, not at its original first-due time; later after-completion occurrences depend on future
    completions). Recurring ones continue their grid from `next_due_at`, within the count bound.
    """
    if schedule.status != ScheduleStatus.ACTIVE or schedule.next_due_at is None or schedule.next_due_at >= end:
        return []
    spec = RecurrenceSpec.for_template(schedule.task_template)
    if spec.kind in (RecurrenceKind.ONCE, RecurrenceKind.AFTER_COMPLETION):
        return [schedule.next_due_at]
    return occurrences_between(
        spec, anchor=schedule.anchor_at, cal=cal, start=schedule.next_due_at, end=end, made=schedule.occurrences_made
    )


def enrollment_upcoming_occurrences(
    *, enrollment: Enrollment, days: int, now: dt.datetime | None = None
) -> list[UpcomingOccurrence]:
    """Open tasks due in [now, now + days) and the occurrences active schedules will create in that window,
    soonest first. Paused and finished schedules make nothing (a hold is not backfilled)."""
    now = now or timezone.now()
    end = now + dt.timedelta(days=days)
    items: list[UpcomingOccurrence] = [
        UpcomingOccurrence(
            template=task.template.code if task.template else None,
            title=task.title,
            role=task.role,
            prong=task.prong,
            available_at=task.available_at,
            due_at=task.due_at,
            occurrence=task.occurrence,
            task_id=task.pk,
        )
        for task in Task.objects.filter(enrollment=enrollment, status__in=OPEN_TASK_STATUSES)
        .filter(Q(due_at__gte=now) | Q(available_at__gte=now))
        .filter(available_at__lt=end)
        .select_related("template")
    ]
    cal = PatientCalendar.for_patient(enrollment.patient)
    schedules = Schedule.objects.filter(
        enrollment=enrollment, status=ScheduleStatus.ACTIVE, next_due_at__isnull=False, next_due_at__lt=end
    ).select_related("task_template")
    for schedule in schedules:
        template = schedule.task_template
        starts = schedule_upcoming_starts(schedule, cal=cal, end=end)
        window = dt.timedelta(hours=template.due_within_hours)
        items.extend(
            UpcomingOccurrence(
                template=template.code,
                title=template.title,
                role=template.role,
                prong=template.prong,
                available_at=start,
                due_at=start + window,
                occurrence=schedule.occurrences_made + n,
                task_id=None,
            )
            for n, start in enumerate(starts, start=1)
        )
    items.sort(key=lambda item: (item.available_at, item.template or ""))
    return items
