"""Re-planning a patient's live enrollments after the patient changed (issue 14; docs/scheduling.md, "Re-planning").

A change to the dialysis modality, days or session time, or to the risk medications, changes what the plan of
each live (active or on-hold) enrollment should be from now on:

- a template that applied before and no longer does ends: its schedule finishes and its open tasks are cancelled
  through the one transition function, with the reason (HD -> PD ends sodium thiosulfate; stopping warfarin ends
  INR monitoring);
- a template that did not apply and now does starts from now, by its first-due rule;
- a template that still applies and follows the dialysis sessions is re-planned from the next session on the
  new calendar, in the site's local time; its occurrences the old calendar made and nobody has started are
  cancelled ("re-planned"), so no dose on an old dialysis day remains.

Applicability is decided only by pathways.domain.applicability.template_applies, asked once for the patient as
it was and once as it is. Every start, end and re-plan is an EnrollmentEvent with its reason; every cancelled
task has a TaskEvent with its reason. Completed, cancelled and in-progress work is left as it is.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pathways.choices import (
    DialysisModality,
    EnrollmentEventKind,
    RecurrenceKind,
    RiskMedication,
    ScheduleStatus,
    TaskStatus,
)
from pathways.domain.applicability import enrollment_stage, template_applies
from pathways.domain.recurrence import WEEKDAY_NAMES, RecurrenceSpec
from pathways.models import Enrollment, EnrollmentEvent, Patient, Schedule, Task, TaskTemplate, User
from pathways.services.schedules import schedule_end, schedule_replan_from, schedule_start_from
from pathways.services.tasks import task_transition

logger = logging.getLogger(__name__)

# Occurrences nobody has started: an old-calendar dose still in the queue. In-progress work is being done at a
# session that is happening, and is left to finish.
_NOT_STARTED = (TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.ON_HOLD)
_OPEN = (*_NOT_STARTED, TaskStatus.IN_PROGRESS)


@dataclass
class ReplanOutcome:
    """What re-planning did to one enrollment: template codes started and ended, the re-planned schedules' next
    occurrence (ISO 8601 UTC, or None when finished), and the ids of the tasks it cancelled."""

    enrollment_id: int
    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    replanned: dict[str, str | None] = field(default_factory=dict)
    tasks_cancelled: list[int] = field(default_factory=list)


def _days(days: Sequence[int] | None) -> str:
    return ", ".join(WEEKDAY_NAMES[d] for d in sorted(days or [])) or "none"


def patient_change_summary(before: Patient, after: Patient) -> str:
    """The change in words, for reasons: "dialysis days Mon, Wed, Fri -> Tue, Thu, Sat; warfarin stopped".

    Names no patient detail (modality, weekdays, times and medication codes only)."""
    parts = []
    if before.dialysis_modality != after.dialysis_modality:
        labels = dict(DialysisModality.choices)
        parts.append(
            f"dialysis modality {labels.get(before.dialysis_modality, before.dialysis_modality)} -> "
            f"{labels.get(after.dialysis_modality, after.dialysis_modality)}"
        )
    if sorted(before.dialysis_days or []) != sorted(after.dialysis_days or []):
        parts.append(f"dialysis days {_days(before.dialysis_days)} -> {_days(after.dialysis_days)}")
    if before.dialysis_session_time != after.dialysis_session_time:
        old, new = (
            t.strftime("%H:%M") if t else "not set" for t in (before.dialysis_session_time, after.dialysis_session_time)
        )
        parts.append(f"session time {old} -> {new}")
    old_meds, new_meds = set(before.risk_medications or []), set(after.risk_medications or [])
    labels = dict(RiskMedication.choices)
    parts += [f"{labels.get(m, m)} started" for m in sorted(new_meds - old_meds)]
    parts += [f"{labels.get(m, m)} stopped" for m in sorted(old_meds - new_meds)]
    return "; ".join(parts)


def _follows_sessions(template: TaskTemplate) -> bool:
    # Only dialysis-day rules read the patient's days and session time (pathways.domain.recurrence.PatientCalendar).
    return RecurrenceSpec.for_template(template).kind == RecurrenceKind.DIALYSIS_DAYS


def _cancel(
    tasks: Sequence[Task], *, reason: str, data: dict[str, object], now: dt.datetime, outcome: ReplanOutcome
) -> None:
    for task in tasks:
        # System actor: the change itself was permission-checked by the caller.
        task_transition(
            task_id=task.pk,
            actor=None,
            expected_version=None,
            to_status=TaskStatus.CANCELLED,
            reason=reason,
            data=data,
            now=now,
        )
        outcome.tasks_cancelled.append(task.pk)


def enrollments_replan(
    *,
    enrollments: Sequence[Enrollment],
    before: Patient,
    after: Patient,
    actor: User | None,
    now: dt.datetime,
) -> list[ReplanOutcome]:
    """Re-plan each (locked, live) enrollment of a patient whose record changed from `before` to `after` (saved).

    Returns one ReplanOutcome per enrollment. Caller holds the transaction, the patient's row and the enrollments'.
    `before` is an unsaved copy of the patient as it was; `after` the patient as saved.
    """
    change = patient_change_summary(before, after)
    calendar_changed = sorted(before.dialysis_days or []) != sorted(after.dialysis_days or []) or (
        before.dialysis_session_time != after.dialysis_session_time
    )
    outcomes = []
    for enrollment in enrollments:
        enrollment.patient = after
        outcome = ReplanOutcome(enrollment_id=enrollment.pk)
        schedules = {
            s.task_template_id: s
            for s in Schedule.objects.select_for_update(of=("self",))
            .select_related("task_template")
            .filter(enrollment=enrollment)
        }
        for row in schedules.values():
            row.enrollment = enrollment
        # Only the templates of the enrollment's stage: a suspected case's change must not start treatment.
        stage = enrollment_stage(enrollment.diagnosis_status)
        templates = enrollment.template.task_templates.exclude(recurrence_kind=RecurrenceKind.ON_TRIGGER)
        for template in templates.filter(stage=stage).order_by("position"):
            was = template_applies(template, before, stage=stage)
            now_applies = template_applies(template, after, stage=stage)
            schedule = schedules.get(template.pk)
            live = schedule is not None and schedule.status != ScheduleStatus.FINISHED
            if live and not now_applies:
                _end_template(enrollment, template, schedule, change=change, actor=actor, now=now, outcome=outcome)
            elif now_applies and (schedule is None or (not was and not live)):
                _start_template(enrollment, template, schedule, change=change, actor=actor, now=now, outcome=outcome)
            elif live and calendar_changed and _follows_sessions(template):
                _replan_schedule(enrollment, template, schedule, change=change, actor=actor, now=now, outcome=outcome)
        outcomes.append(outcome)
        logger.info(
            "enrollment re-planned: enrollment=%s started=%s ended=%s replanned=%s cancelled=%s",
            enrollment.pk,
            outcome.started,
            outcome.ended,
            sorted(outcome.replanned),
            len(outcome.tasks_cancelled),
        )
    return outcomes


def _event(
    enrollment: Enrollment, kind: str, *, actor: User | None, now: dt.datetime, reason: str, data: dict[str, object]
) -> None:
    EnrollmentEvent.objects.create(enrollment=enrollment, kind=kind, actor=actor, at=now, reason=reason, data=data)


def _end_template(
    enrollment: Enrollment,
    template: TaskTemplate,
    schedule: Schedule | None,
    *,
    change: str,
    actor: User | None,
    now: dt.datetime,
    outcome: ReplanOutcome,
) -> None:
    assert schedule is not None
    reason = f"{template.code} no longer applies: {change}"
    schedule_end(schedule, now=now)
    open_tasks = list(Task.objects.filter(enrollment=enrollment, template=template, status__in=_OPEN).order_by("pk"))
    before = len(outcome.tasks_cancelled)
    _cancel(open_tasks, reason=reason, data={"template_ended": template.code}, now=now, outcome=outcome)
    outcome.ended.append(template.code)
    data: dict[str, object] = {
        "template": template.code,
        "applies_if": template.applies_if,
        "tasks_cancelled": outcome.tasks_cancelled[before:],
    }
    _event(enrollment, EnrollmentEventKind.TEMPLATE_ENDED, actor=actor, now=now, reason=reason, data=data)


def _start_template(
    enrollment: Enrollment,
    template: TaskTemplate,
    schedule: Schedule | None,
    *,
    change: str,
    actor: User | None,
    now: dt.datetime,
    outcome: ReplanOutcome,
) -> None:
    reason = f"{template.code} now applies: {change}"
    started = schedule_start_from(enrollment=enrollment, template=template, existing=schedule, actor=actor, now=now)
    outcome.started.append(template.code)
    data: dict[str, object] = {
        "template": template.code,
        "applies_if": template.applies_if,
        "next_due_at": started.next_due_at.isoformat() if started.next_due_at else None,
    }
    _event(enrollment, EnrollmentEventKind.TEMPLATE_STARTED, actor=actor, now=now, reason=reason, data=data)


def _replan_schedule(
    enrollment: Enrollment,
    template: TaskTemplate,
    schedule: Schedule | None,
    *,
    change: str,
    actor: User | None,
    now: dt.datetime,
    outcome: ReplanOutcome,
) -> None:
    assert schedule is not None
    reason = f"re-planned from the next session: {change}"
    old_next = schedule.next_due_at
    stale = list(Task.objects.filter(schedule=schedule, status__in=_NOT_STARTED).order_by("occurrence"))
    before = len(outcome.tasks_cancelled)
    _cancel(stale, reason=reason, data={"template_replanned": template.code}, now=now, outcome=outcome)
    following = schedule_replan_from(schedule, now=now)
    outcome.replanned[template.code] = following.isoformat() if following else None
    data: dict[str, object] = {
        "template": template.code,
        "previous_next_due_at": old_next.isoformat() if old_next else None,
        "next_due_at": following.isoformat() if following else None,
        "tasks_cancelled": outcome.tasks_cancelled[before:],
    }
    _event(enrollment, EnrollmentEventKind.SCHEDULE_REPLANNED, actor=actor, now=now, reason=reason, data=data)
