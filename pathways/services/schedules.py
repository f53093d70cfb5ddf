"""Schedule writes: every change to a `Schedule` row happens here.

A schedule is one enrollment x recurring or deferred template; its row is the source of truth for what comes
next (docs/scheduling.md). The writes:

- start: an enrollment's schedules are created and their day-0 occurrences materialized (`schedules_start`,
  `schedules_start_many`);
- materialize: due occurrences become Task rows (`schedules_materialize`, the one mechanism, used by the
  materialize sweep in services/sweeps/; a new enrollment's day-0 work is planned by the same `_plans` before
  its schedules are written, so each goes in once);
- after an occurrence closes: after-completion schedules learn their next time (`schedule_on_task_completed`,
  `schedule_on_task_closed`, called by the one transition function in services/tasks.py);
- pause and resume: enrollment holds (`schedules_pause`, `schedule_resume`) and safety holds set by a rule
  (`schedule_hold_for_safety`, released through services/enrollment.py `schedule_release_hold`);
- finish: an ended enrollment's schedules stop (`schedules_finish`; `schedules_finish_by_id` for templates a
  new version removed);
- re-plan after a change to the patient (docs/scheduling.md, "Re-planning"): a schedule follows the new
  dialysis calendar from the next occurrence (`schedule_replan_from`), a template that stops applying ends
  (`schedule_end`), one that starts applying starts or restarts from now (`schedule_start_from`); the
  orchestration, with the task cancellations and the recorded reasons, is services/replan.py.
- move to another pathway version: schedules follow the new version's templates, re-planned from now where
  the timing changed (`schedules_replan`, called by services/migration.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from pathways.choices import EnrollmentStatus, RecurrenceKind, ScheduleStatus, TaskStatus
from pathways.domain.recurrence import (
    PatientCalendar,
    RecurrenceSpec,
    first_occurrence,
    next_after_completion,
    occurrence_after,
    occurrences_between,
)
from pathways.domain.versions import replanned_next_due
from pathways.errors import NotFound
from pathways.models import Enrollment, Schedule, Task, TaskTemplate, User
from pathways.services.rows import rows_update
from pathways.services.task_creation import NewTask, new_task_from_template, tasks_create

logger = logging.getLogger(__name__)

_SCHEDULE_FIELDS = ["occurrences_made", "next_due_at", "status", "finished_at", "updated_at"]


# --- starting an enrollment's schedules -------------------------------------------------------------------


def schedules_start(
    *,
    enrollment: Enrollment,
    templates: Iterable[TaskTemplate],
    actor: User | None,
    now: dt.datetime,
    paused: bool = False,
) -> list[Schedule]:
    """Create one schedule per template for a new enrollment, anchored at `now`, and materialize day-0 work.

    `templates` are the scheduled templates that apply to the patient (the caller filters them). A template
    with no occurrence at all starts finished. Day-0 work (occurrences due now) becomes tasks at once, in one
    batch, so enrolling costs a fixed number of queries whatever the template count; the sweep does the rest.
    `paused` (a template started while the enrollment is on hold, by a version migration): the schedules
    start paused and make nothing until the enrollment resumes. Caller holds the transaction.
    """
    return schedules_start_many(starts=[(enrollment, list(templates), paused)], actor=actor, now=now)


def schedules_start_many(
    *, starts: Sequence[tuple[Enrollment, Sequence[TaskTemplate], bool]], actor: User | None, now: dt.datetime
) -> list[Schedule]:
    """`schedules_start` for several enrollments at once, (enrollment, templates, paused) each: one insert of
    the schedules and one materialization of their day-0 work for all of them (a version migration of many).
    Each enrollment needs `patient.site` loaded. Caller holds the transaction."""
    schedules = []
    for enrollment, templates, paused in starts:
        cal = PatientCalendar.for_patient(enrollment.patient)
        for template in templates:
            first = first_occurrence(RecurrenceSpec.for_template(template), anchor=now, cal=cal)
            status = ScheduleStatus.PAUSED if paused else ScheduleStatus.ACTIVE
            schedules.append(
                Schedule(
                    enrollment=enrollment,
                    task_template=template,
                    anchor_at=now,
                    next_due_at=first,
                    status=status if first else ScheduleStatus.FINISHED,
                    paused_at=now if paused and first else None,
                    finished_at=None if first else now,
                )
            )
    if not schedules:
        return []
    # Day-0 work is planned before the schedules are written, so each row goes in once, already moved on past it.
    # The schedules are new in this transaction, so none of their occurrences can exist: no savepoint to retry
    # from (schedules_materialize's), and an IntegrityError fails the caller's transaction.
    plans = _plans(schedules, until=now, now=now)
    Schedule.objects.bulk_create(schedules)
    tasks_create(
        new_tasks=[dataclasses.replace(n, schedule_id=s.pk) for s, pending in plans for n in pending],
        actor=actor,
        now=now,
        reason="scheduled occurrence",
    )
    return schedules


# --- materializing ---------------------------------------------------------------------------------------


@dataclass
class MaterializeOutcome:
    """What one materialize call did: tasks created, occurrences found already present, schedules it skipped."""

    tasks: list[Task] = field(default_factory=list)
    schedules_advanced: int = 0
    schedules_finished: int = 0
    duplicates_skipped: int = 0
    failed_schedule_ids: list[int] = field(default_factory=list)


def _completed_codes(schedules: Sequence[Schedule]) -> dict[int, set[str]]:
    """Completed template codes per enrollment, for the schedules whose template has prerequisites (one query)."""
    needed = {s.enrollment_id for s in schedules if s.task_template.prerequisites}
    codes: dict[int, set[str]] = defaultdict(set)
    if needed:
        rows = (
            Task.objects.filter(enrollment_id__in=needed, status=TaskStatus.COMPLETED, template__isnull=False)
            .values_list("enrollment_id", "template__code")
            .distinct()
        )
        for enrollment_id, code in rows:
            codes[enrollment_id].add(code)
    return codes


def _plan(
    schedule: Schedule, *, until: dt.datetime, now: dt.datetime, completed: set[str], max_occurrences: int
) -> list[NewTask]:
    """The occurrences of one schedule that start at or before `until`; moves the schedule object on (unsaved)."""
    template = schedule.task_template
    spec = RecurrenceSpec.for_template(template)
    cal = PatientCalendar.for_patient(schedule.enrollment.patient)
    pending: list[NewTask] = []
    while schedule.next_due_at is not None and schedule.next_due_at <= until and len(pending) < max_occurrences:
        schedule.occurrences_made += 1
        new = new_task_from_template(
            template,
            available_at=schedule.next_due_at,
            completed_codes=completed,
            schedule_id=schedule.pk,
            occurrence=schedule.occurrences_made,
            scheduled=True,  # also before the schedule has an id (a new enrollment's day-0 work)
        )
        pending.append(dataclasses.replace(new, enrollment_id=schedule.enrollment_id))
        schedule.next_due_at = occurrence_after(
            spec, anchor=schedule.anchor_at, cal=cal, after=schedule.next_due_at, made=schedule.occurrences_made
        )
    if pending and schedule.next_due_at is None and spec.kind != RecurrenceKind.AFTER_COMPLETION:
        schedule.status, schedule.finished_at = ScheduleStatus.FINISHED, now
    schedule.updated_at = timezone.now()
    return pending


def _create_one_schedule(
    schedule: Schedule, pending: list[NewTask], *, actor: User | None, now: dt.datetime, outcome: MaterializeOutcome
) -> bool:
    """Slow path after a conflict: create this schedule's occurrences that do not exist yet, in a savepoint."""
    existing: set[int] = {
        occurrence
        for occurrence in Task.objects.filter(
            schedule_id=schedule.pk, occurrence__in=[n.occurrence for n in pending]
        ).values_list("occurrence", flat=True)
        if occurrence is not None
    }
    missing = [n for n in pending if n.occurrence not in existing]
    try:
        with transaction.atomic():
            outcome.tasks += tasks_create(new_tasks=missing, actor=actor, now=now, reason="scheduled occurrence")
    except IntegrityError:
        # Only a writer that ignores the schedule lock can get here; leave the schedule as it was and report it.
        logger.exception("schedule %s: occurrences could not be created; skipped this round", schedule.pk)
        outcome.failed_schedule_ids.append(schedule.pk)
        return False
    if existing:
        logger.warning("schedule %s: occurrences %s already existed; skipped them", schedule.pk, sorted(existing))
        outcome.duplicates_skipped += len(existing)
    return True


def _plans(
    schedules: Sequence[Schedule], *, until: dt.datetime, now: dt.datetime, max_occurrences: int = 1000
) -> list[tuple[Schedule, list[NewTask]]]:
    """The active schedules among `schedules` with an occurrence due by `until`, each with its occurrences
    (`_plan`: the schedule objects move on, unsaved). One query, for the prerequisites' completed codes."""
    due = [
        s
        for s in schedules
        if s.status == ScheduleStatus.ACTIVE and s.next_due_at is not None and s.next_due_at <= until
    ]
    if not due:
        return []
    completed = _completed_codes(due)
    return [
        (s, _plan(s, until=until, now=now, completed=completed[s.enrollment_id], max_occurrences=max_occurrences))
        for s in due
    ]


def schedules_materialize(
    *,
    schedules: Sequence[Schedule],
    until: dt.datetime,
    now: dt.datetime,
    actor: User | None = None,
    max_occurrences: int = 1000,
) -> MaterializeOutcome:
    """Create the tasks of locked schedules whose occurrences start at or before `until` (the one mechanism).

    The sweep and the re-plans come here (a new enrollment's day-0 work is planned the same way, `_plans`, before
    its schedules are written). The caller holds the row locks and the transaction. One bulk insert of tasks and
    events serves the whole batch; should an occurrence already exist (the unique (schedule, occurrence)
    constraint), each schedule is retried alone, skipping what exists, so one bad row neither crashes the sweep
    nor creates a duplicate. Schedules need `task_template` and `enrollment.patient.site` loaded.
    """
    outcome = MaterializeOutcome()
    plans = _plans(schedules, until=until, now=now, max_occurrences=max_occurrences)
    if not plans:
        return outcome
    try:
        with transaction.atomic():
            outcome.tasks = tasks_create(
                new_tasks=[n for _, pending in plans for n in pending],
                actor=actor,
                now=now,
                reason="scheduled occurrence",
            )
        saved = [s for s, _ in plans]
    except IntegrityError:
        saved = [s for s, pending in plans if _create_one_schedule(s, pending, actor=actor, now=now, outcome=outcome)]
    _save_schedules(saved)
    outcome.schedules_advanced = len(saved)
    outcome.schedules_finished = sum(1 for s in saved if s.status == ScheduleStatus.FINISHED)
    return outcome


def _save_schedules(schedules: list[Schedule]) -> None:
    """Write the moved-on schedules in one statement (rows_update: bulk_update's Python cost would miss the
    2,000 occurrences/s target)."""
    rows_update(schedules, _SCHEDULE_FIELDS)


def schedule_materialize(
    *,
    schedule: Schedule,
    until: dt.datetime,
    now: dt.datetime,
    actor: User | None = None,
    max_occurrences: int = 1000,
) -> list[Task]:
    """Create the tasks of one (locked, active) schedule whose occurrences start at or before `until`."""
    return schedules_materialize(
        schedules=[schedule], until=until, now=now, actor=actor, max_occurrences=max_occurrences
    ).tasks


# --- after an occurrence closes -----------------------------------------------------------------------


def schedule_lock(schedule_id: int) -> Schedule:
    """Lock one schedule row (with its template and patient loaded); NotFound if there is none."""
    try:
        return (
            Schedule.objects.select_for_update(of=("self",))
            .select_related("task_template", "enrollment__patient__site")
            .get(pk=schedule_id)
        )
    except Schedule.DoesNotExist as exc:
        raise NotFound(f"schedule {schedule_id} not found") from exc


@transaction.atomic
def schedule_on_task_completed(*, schedule_id: int, completed_at: dt.datetime) -> None:
    """An occurrence was completed: after-completion schedules now know their next time."""
    schedule = schedule_lock(schedule_id)
    schedule.last_completed_at = completed_at
    fields = ["last_completed_at", "updated_at"]
    spec = RecurrenceSpec.for_template(schedule.task_template)
    if spec.kind == RecurrenceKind.AFTER_COMPLETION and schedule.status != ScheduleStatus.FINISHED:
        fields += _move_after_completion(schedule, spec=spec, moment=completed_at)
    schedule.save(update_fields=fields)


@transaction.atomic
def schedule_on_task_closed(*, schedule_id: int, occurrence: int | None, closed_at: dt.datetime) -> None:
    """An open occurrence was cancelled, failed or entered in error.

    An after-completion schedule waits for its open occurrence to close; closed without being done, it would
    never move again. So the next occurrence is due N hours after the closing, exactly as if it had been
    completed then (a missed dressing change is not re-issued at once, and the chain never stalls). Only the
    latest occurrence counts: closing an older one changes nothing. Other kinds keep their calendar.
    """
    schedule = schedule_lock(schedule_id)
    spec = RecurrenceSpec.for_template(schedule.task_template)
    if (
        spec.kind != RecurrenceKind.AFTER_COMPLETION
        or schedule.status == ScheduleStatus.FINISHED
        or schedule.next_due_at is not None
        or occurrence != schedule.occurrences_made
    ):
        return
    fields = _move_after_completion(schedule, spec=spec, moment=closed_at)
    schedule.save(update_fields=[*fields, "updated_at"])


def _move_after_completion(schedule: Schedule, *, spec: RecurrenceSpec, moment: dt.datetime) -> list[str]:
    upcoming = next_after_completion(
        spec,
        anchor=schedule.anchor_at,
        cal=PatientCalendar.for_patient(schedule.enrollment.patient),
        completed_at=moment,
        made=schedule.occurrences_made,
    )
    schedule.next_due_at = upcoming
    if upcoming is None:
        schedule.status, schedule.finished_at = ScheduleStatus.FINISHED, moment
        return ["next_due_at", "status", "finished_at"]
    return ["next_due_at"]


# --- pausing, resuming, finishing -------------------------------------------------------------------------


def schedules_pause(*, enrollment: Enrollment, now: dt.datetime) -> int:
    """An enrollment hold: its active schedules pause (nothing new materializes). Returns how many paused."""
    return Schedule.objects.filter(enrollment=enrollment, status=ScheduleStatus.ACTIVE).update(
        status=ScheduleStatus.PAUSED, paused_at=now, updated_at=now
    )


def schedule_resume(schedule: Schedule, *, now: dt.datetime) -> int:
    """Resume one paused schedule from now; returns how many occurrences were missed (recorded, not backfilled)."""
    spec = RecurrenceSpec.for_template(schedule.task_template)
    cal = PatientCalendar.for_patient(schedule.enrollment.patient)
    missed = 0
    if schedule.next_due_at is not None and schedule.next_due_at < now:
        if spec.is_recurring and spec.kind != RecurrenceKind.AFTER_COMPLETION:
            missed = len(
                occurrences_between(
                    spec,
                    anchor=schedule.anchor_at,
                    cal=cal,
                    start=schedule.next_due_at,
                    end=now,
                    made=schedule.occurrences_made,
                )
            )
            following = occurrence_after(
                spec,
                anchor=schedule.anchor_at,
                cal=cal,
                after=now - dt.timedelta(microseconds=1),
                made=schedule.occurrences_made,
            )
            schedule.next_due_at = following
        else:
            # One-off and after-completion work is not lost to a hold: it is due from now.
            schedule.next_due_at = now
    schedule.skipped_occurrences += missed
    schedule.paused_at, schedule.pause_reason = None, ""
    if schedule.next_due_at is None:
        schedule.status, schedule.finished_at = ScheduleStatus.FINISHED, now
    else:
        schedule.status = ScheduleStatus.ACTIVE
    schedule.save(
        update_fields=[
            "next_due_at",
            "skipped_occurrences",
            "paused_at",
            "pause_reason",
            "status",
            "finished_at",
            "updated_at",
        ]
    )
    return missed


def schedule_hold_for_safety(*, schedule: Schedule, reason: str, now: dt.datetime) -> None:
    """A safety rule holds a (locked) schedule until a clinician releases it; `reason` names the rule.

    Paused by an enrollment hold or active, it now waits for a clinician, not for an enrollment resume. A
    schedule already held by a safety rule keeps its first reason.
    """
    if schedule.pause_reason:
        return
    schedule.status, schedule.pause_reason = ScheduleStatus.PAUSED, reason
    schedule.paused_at = schedule.paused_at or now
    schedule.save(update_fields=["status", "pause_reason", "paused_at", "updated_at"])


def schedule_clear_safety_hold(*, schedule: Schedule) -> None:
    """Drop a safety hold's reason but leave the schedule paused: the enrollment's own hold still applies."""
    schedule.pause_reason = ""
    schedule.save(update_fields=["pause_reason", "updated_at"])


def schedules_finish(*, enrollment: Enrollment, now: dt.datetime) -> int:
    """An ended enrollment: every schedule not yet finished finishes now. Returns how many."""
    return _finish(Schedule.objects.filter(enrollment=enrollment), now=now)


def schedules_finish_by_id(*, schedule_ids: Collection[int], now: dt.datetime) -> int:
    """These schedules finish now (templates a new pathway version removed, of one enrollment or many)."""
    if not schedule_ids:
        return 0
    return _finish(Schedule.objects.filter(pk__in=schedule_ids), now=now)


def _finish(qs: QuerySet[Schedule], *, now: dt.datetime) -> int:
    return qs.exclude(status=ScheduleStatus.FINISHED).update(
        status=ScheduleStatus.FINISHED, finished_at=now, next_due_at=None, updated_at=now
    )


# --- re-planning after a change to the patient ----------------------------------------------------------


def schedule_replan_from(schedule: Schedule, *, now: dt.datetime) -> dt.datetime | None:
    """Re-plan a (locked) schedule on its patient's calendar as stored now: the next occurrence strictly after
    `now`, in the site's local time (aware UTC; None when the rule yields no more, and the schedule finishes).

    The anchor, the occurrence count and the status stay: a paused schedule keeps waiting for its resume or
    release, from the new next occurrence. The caller closes the open occurrences the old calendar made.
    Needs `task_template` and `enrollment.patient.site` loaded (the patient as saved, with its new values).
    """
    spec = RecurrenceSpec.for_template(schedule.task_template)
    following = occurrence_after(
        spec,
        anchor=schedule.anchor_at,
        cal=PatientCalendar.for_patient(schedule.enrollment.patient),
        after=now,
        made=schedule.occurrences_made,
    )
    schedule.next_due_at = following
    if following is None:
        schedule.status, schedule.finished_at = ScheduleStatus.FINISHED, now
    schedule.save(update_fields=["next_due_at", "status", "finished_at", "updated_at"])
    return following


def schedule_end(schedule: Schedule, *, now: dt.datetime) -> None:
    """A (locked) schedule's template no longer applies to the patient: it finishes now (nothing more is made)."""
    schedule.status, schedule.finished_at, schedule.next_due_at = ScheduleStatus.FINISHED, now, None
    schedule.paused_at, schedule.pause_reason = None, ""
    schedule.save(update_fields=["status", "finished_at", "next_due_at", "paused_at", "pause_reason", "updated_at"])


def schedule_start_from(
    *,
    enrollment: Enrollment,
    template: TaskTemplate,
    existing: Schedule | None,
    actor: User | None,
    now: dt.datetime,
) -> Schedule:
    """A template starts to apply mid-enrollment: its schedule starts from now, by the template's first-due rule
    (a day-0 template is due at once), exactly as at enrolment but anchored at `now`.

    `existing` is the (locked) schedule an earlier end finished; it restarts in place, keeping its occurrence
    numbers (so a count bound counts the earlier occurrences too). An enrollment on hold gets the schedule
    paused; its resume starts it. Caller holds the transaction; `enrollment.patient.site` loaded.
    """
    if existing is None and enrollment.status == EnrollmentStatus.ACTIVE:
        return schedules_start(enrollment=enrollment, templates=[template], actor=actor, now=now)[0]
    schedule = existing or Schedule(enrollment=enrollment, task_template=template)
    first = first_occurrence(
        RecurrenceSpec.for_template(template), anchor=now, cal=PatientCalendar.for_patient(enrollment.patient)
    )
    schedule.anchor_at, schedule.next_due_at = now, first
    schedule.finished_at, schedule.pause_reason = (None if first else now), ""
    if first is None:
        schedule.status, schedule.paused_at = ScheduleStatus.FINISHED, None
    elif enrollment.status == EnrollmentStatus.ON_HOLD:
        schedule.status, schedule.paused_at = ScheduleStatus.PAUSED, now
    else:
        schedule.status, schedule.paused_at = ScheduleStatus.ACTIVE, None
    schedule.save()
    schedule.enrollment = enrollment
    schedules_materialize(schedules=[schedule], until=now, now=now, actor=actor)
    return schedule


# --- moving to another pathway version --------------------------------------------------------------------


def schedules_replan(*, moves: Sequence[tuple[Schedule, TaskTemplate, bool]], now: dt.datetime) -> None:
    """Point (locked) schedules at another version's templates, in one statement (a version migration).

    Each move is (schedule, new template, replan). With `replan` (the template's timing changed), the next
    occurrence is re-planned from `now` by `domain.versions.replanned_next_due` (the anchor and the count of
    occurrences made are kept); a schedule with nothing more to make finishes. A paused schedule stays paused.
    Without it only the template changes: what comes next stays as planned, under the new template's title,
    role and window. Schedules need `task_template` and `enrollment.patient.site` loaded.
    """
    if not moves:
        return
    for schedule, template, replan in moves:
        if replan:
            replanned = replanned_next_due(
                RecurrenceSpec.for_template(template),
                anchor=schedule.anchor_at,
                cal=PatientCalendar.for_patient(schedule.enrollment.patient),
                now=now,
                made=schedule.occurrences_made,
                next_due_at=schedule.next_due_at,
                last_completed_at=schedule.last_completed_at,
            )
            schedule.next_due_at = replanned.next_due_at
            if replanned.finished:
                schedule.status, schedule.finished_at = ScheduleStatus.FINISHED, now
        schedule.task_template = template
        schedule.updated_at = now
    # One statement for all (rows_update): bulk_update's Python cost was more than the migration of an enrollment.
    rows_update(
        [schedule for schedule, _, _ in moves], ["task_template", "next_due_at", "status", "finished_at", "updated_at"]
    )
