"""Schedule writes: turning due occurrences into tasks and moving schedules on."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from pathways.choices import RecurrenceKind, ScheduleStatus
from pathways.models import Patient, Schedule, Task, TaskTemplate, User
from pathways.services.recurrence import DEFAULT_SESSION_TIME, PatientCalendar, RecurrenceSpec, occurrence_after
from pathways.services.recurrence import next_after_completion as _next_after_completion
from pathways.services.tasks import completed_template_codes, new_task_from_template, tasks_create


def spec_for(template: TaskTemplate) -> RecurrenceSpec:
    return RecurrenceSpec.from_fields(
        kind=template.recurrence_kind, first_due=template.first_due, recurrence=template.recurrence
    )


def calendar_for(patient: Patient) -> PatientCalendar:
    return PatientCalendar(
        tz=patient.site.tzinfo,
        dialysis_days=tuple(patient.dialysis_days or ()),
        session_time=patient.dialysis_session_time or DEFAULT_SESSION_TIME,
    )


def schedule_materialize(
    *,
    schedule: Schedule,
    until: dt.datetime,
    now: dt.datetime,
    actor: User | None = None,
    max_occurrences: int = 1000,
) -> list[Task]:
    """Create the tasks of one (locked, active) schedule whose occurrences start at or before `until`.

    Idempotent through the unique (schedule, occurrence) constraint. The caller holds the row lock and
    the transaction.
    """
    if schedule.status != ScheduleStatus.ACTIVE:
        return []
    template = schedule.task_template
    enrollment = schedule.enrollment
    spec = spec_for(template)
    cal = calendar_for(enrollment.patient)
    completed = completed_template_codes(enrollment.pk) if template.prerequisites else set()
    pending = []
    while schedule.next_due_at is not None and schedule.next_due_at <= until and len(pending) < max_occurrences:
        schedule.occurrences_made += 1
        pending.append(
            new_task_from_template(
                template,
                available_at=schedule.next_due_at,
                completed_codes=completed,
                schedule_id=schedule.pk,
                occurrence=schedule.occurrences_made,
            )
        )
        schedule.next_due_at = occurrence_after(
            spec, anchor=schedule.anchor_at, cal=cal, after=schedule.next_due_at, made=schedule.occurrences_made
        )
    if not pending:
        return []
    if schedule.next_due_at is None and spec.kind != RecurrenceKind.AFTER_COMPLETION:
        schedule.status, schedule.finished_at = ScheduleStatus.FINISHED, now
    schedule.save(update_fields=["occurrences_made", "next_due_at", "status", "finished_at", "updated_at"])
    return tasks_create(
        enrollment_id=enrollment.pk,
        new_tasks=pending,
        actor=actor,
        now=now,
        reason="scheduled occurrence",
    )


@transaction.atomic
def schedule_on_task_completed(*, schedule_id: int, completed_at: dt.datetime) -> None:
    """An occurrence was completed: after-completion schedules now know their next time."""
    schedule = (
        Schedule.objects.select_for_update()
        .select_related("task_template", "enrollment__patient__site")
        .get(pk=schedule_id)
    )
    schedule.last_completed_at = completed_at
    fields = ["last_completed_at", "updated_at"]
    spec = spec_for(schedule.task_template)
    if spec.kind == RecurrenceKind.AFTER_COMPLETION and schedule.status != ScheduleStatus.FINISHED:
        upcoming = _next_after_completion(
            spec,
            anchor=schedule.anchor_at,
            cal=calendar_for(schedule.enrollment.patient),
            completed_at=completed_at,
            made=schedule.occurrences_made,
        )
        schedule.next_due_at = upcoming
        fields.append("next_due_at")
        if upcoming is None:
            schedule.status, schedule.finished_at = ScheduleStatus.FINISHED, completed_at
            fields += ["status", "finished_at"]
    schedule.save(update_fields=fields)
