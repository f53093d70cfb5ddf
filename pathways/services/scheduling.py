"""Schedule writes: turning due occurrences into tasks, moving schedules on, and the beat sweeps.

The database holds the future (docs/scheduling.md): `Schedule.next_due_at` says what comes next, and three
sweeps, run every minute by Celery beat or by hand with `manage.py run_scheduler --as-of`, do the rest:

- `schedules_materialize_due`: due occurrences within the look-ahead horizon become Task rows;
- `tasks_escalate_overdue`: overdue work is escalated once, then its priority raised after a second threshold;
- `tasks_remind_due_soon`: workers hear about available work that comes due soon.

Each sweep claims rows in bounded batches with `SELECT ... FOR UPDATE SKIP LOCKED`, commits each batch on its
own, and is safe to run twice or concurrently: unique constraints and level markers, not timing, prevent
duplicates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from pathways.choices import (
    PRIORITY_RANK,
    NotificationKind,
    Priority,
    RecurrenceKind,
    ScheduleStatus,
    TaskEventKind,
    TaskStatus,
)
from pathways.domain.recurrence import PatientCalendar, RecurrenceSpec, occurrence_after
from pathways.domain.recurrence import next_after_completion as _next_after_completion
from pathways.models import CareTeamMember, Notification, Schedule, Task, TaskEvent, TaskTemplate, User
from pathways.services.notifications import (
    NotificationDraft,
    Recipients,
    notifications_create,
    recipients_for,
    task_message,
)
from pathways.services.task_creation import NewTask, new_task_from_template, tasks_create

logger = logging.getLogger(__name__)

# Work that can be done now: held tasks are paused on purpose and are neither escalated nor reminded.
WORKABLE_STATUSES = (TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS)

_SCHEDULE_FIELDS = ["occurrences_made", "next_due_at", "status", "finished_at", "updated_at"]


def _setting(name: str) -> int:
    return int(settings.CAREPATH[name])


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


def schedules_materialize(
    *,
    schedules: Sequence[Schedule],
    until: dt.datetime,
    now: dt.datetime,
    actor: User | None = None,
    max_occurrences: int = 1000,
) -> MaterializeOutcome:
    """Create the tasks of locked schedules whose occurrences start at or before `until` (the one mechanism).

    Enrollment (day-0 work) and the sweep both come here. The caller holds the row locks and the transaction.
    One bulk insert of tasks and events serves the whole batch; should an occurrence already exist (the unique
    (schedule, occurrence) constraint), each schedule is retried alone, skipping what exists, so one bad row
    neither crashes the sweep nor creates a duplicate. Schedules need `task_template` and
    `enrollment.patient.site` loaded.
    """
    outcome = MaterializeOutcome()
    due = [
        s
        for s in schedules
        if s.status == ScheduleStatus.ACTIVE and s.next_due_at is not None and s.next_due_at <= until
    ]
    if not due:
        return outcome
    completed = _completed_codes(due)
    plans = [
        (s, _plan(s, until=until, now=now, completed=completed[s.enrollment_id], max_occurrences=max_occurrences))
        for s in due
    ]
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
    """Write the moved-on schedules in one statement."""
    if not schedules:
        return
    if connection.vendor != "postgresql":
        Schedule.objects.bulk_update(schedules, _SCHEDULE_FIELDS)
        return
    # bulk_update builds a CASE per row and field in Python (about 2 ms a row); one UPDATE ... FROM unnest()
    # of typed arrays does the same in a single round trip and keeps the 2,000 occurrences/s target.
    table = Schedule._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS s
            SET occurrences_made = v.made, next_due_at = v.next_due, status = v.status,
                finished_at = v.finished, updated_at = v.updated
            FROM unnest(%s::bigint[], %s::integer[], %s::timestamptz[], %s::varchar[], %s::timestamptz[],
                        %s::timestamptz[]) AS v(id, made, next_due, status, finished, updated)
            WHERE s.id = v.id
            """,  # noqa: S608 - the table name comes from the model, every value is a parameter
            [
                [s.pk for s in schedules],
                [s.occurrences_made for s in schedules],
                [s.next_due_at for s in schedules],
                [str(s.status) for s in schedules],
                [s.finished_at for s in schedules],
                [s.updated_at for s in schedules],
            ],
        )


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


@dataclass
class SweepReport:
    """What one run of a sweep did, for logs, the Celery result and run_scheduler's output."""

    name: str
    as_of: dt.datetime
    batches: int = 0
    rows: int = 0
    created: int = 0
    notifications: int = 0
    duplicates_skipped: int = 0
    failed: list[int] = field(default_factory=list)
    details: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data

    def summary(self) -> str:
        extra = "".join(f", {k} {v}" for k, v in sorted(self.details.items()))
        failed = f", failed {self.failed}" if self.failed else ""
        dup = f", duplicates skipped {self.duplicates_skipped}" if self.duplicates_skipped else ""
        return (
            f"{self.name}: {self.rows} rows in {self.batches} batches, {self.created} created, "
            f"{self.notifications} notifications{extra}{dup}{failed} ({self.seconds * 1000:.1f} ms)"
        )


# What the planner reads: loading only these skips patient names and a dozen JSON columns per row.
_SWEEP_ONLY = (
    "enrollment_id",
    "task_template_id",
    "status",
    "anchor_at",
    "next_due_at",
    "occurrences_made",
    "finished_at",
    "updated_at",
    "enrollment__patient_id",
    "enrollment__patient__site_id",
    "enrollment__patient__dialysis_days",
    "enrollment__patient__dialysis_session_time",
    "enrollment__patient__site__timezone",
)


def _attach_templates(schedules: list[Schedule]) -> None:
    """Load each distinct task template once for the batch (a pathway has about twenty)."""
    templates = TaskTemplate.objects.in_bulk({s.task_template_id for s in schedules})
    for schedule in schedules:
        schedule.task_template = templates[schedule.task_template_id]


def schedules_materialize_due(
    *,
    now: dt.datetime | None = None,
    horizon_hours: int | None = None,
    batch_size: int | None = None,
    max_seconds: float | None = None,
) -> SweepReport:
    """The materializer sweep: every active schedule with an occurrence inside the horizon gets its tasks.

    Batches of `batch_size` schedules, oldest due first, are claimed with FOR UPDATE SKIP LOCKED and
    committed one by one, so concurrent sweeps share the work and a crash loses at most one uncommitted batch
    (which the next sweep redoes). `max_seconds` stops starting new batches (beat runs the sweep again).
    """
    now = now or timezone.now()
    until = now + dt.timedelta(
        hours=horizon_hours if horizon_hours is not None else _setting("MATERIALIZE_HORIZON_HOURS")
    )
    batch_size = batch_size or _setting("SWEEP_BATCH_SIZE")
    report = SweepReport(name="materialize", as_of=now)
    started = time.monotonic()
    finished = 0
    while max_seconds is None or time.monotonic() - started < max_seconds:
        with transaction.atomic():
            batch = list(
                Schedule.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("enrollment__patient__site")
                .only(*_SWEEP_ONLY)
                .filter(status=ScheduleStatus.ACTIVE, next_due_at__lte=until)
                .exclude(pk__in=report.failed)
                .order_by("next_due_at", "pk")[:batch_size]
            )
            if not batch:
                break
            _attach_templates(batch)
            outcome = schedules_materialize(schedules=batch, until=until, now=now)
        report.batches += 1
        report.rows += len(batch)
        report.created += len(outcome.tasks)
        report.duplicates_skipped += outcome.duplicates_skipped
        report.failed += outcome.failed_schedule_ids
        finished += outcome.schedules_finished
        if len(batch) < batch_size:
            break
    report.details["schedules_finished"] = finished
    report.seconds = time.monotonic() - started
    return report


# --- after an occurrence closes -----------------------------------------------------------------------


def _lock_schedule(schedule_id: int) -> Schedule:
    return (
        Schedule.objects.select_for_update(of=("self",))
        .select_related("task_template", "enrollment__patient__site")
        .get(pk=schedule_id)
    )


@transaction.atomic
def schedule_on_task_completed(*, schedule_id: int, completed_at: dt.datetime) -> None:
    """An occurrence was completed: after-completion schedules now know their next time."""
    schedule = _lock_schedule(schedule_id)
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
    schedule = _lock_schedule(schedule_id)
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
    upcoming = _next_after_completion(
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


# --- escalation ------------------------------------------------------------------------------------------

_PRIORITY_ORDER = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__)


def _raised(priority: str) -> str:
    rank = PRIORITY_RANK.get(Priority(priority), 0)
    return _PRIORITY_ORDER[min(rank + 1, len(_PRIORITY_ORDER) - 1)]


def _escalate_task(task: Task, *, to_level: int, now: dt.datetime) -> tuple[list[TaskEvent], list[int]]:
    """Move one locked task up to `to_level`, one level at a time; returns its events and the levels reached."""
    events: list[TaskEvent] = []
    levels = []
    fields = {"escalation_level", "escalated_at", "version", "updated_at"}
    while task.escalation_level < to_level:
        task.escalation_level += 1
        task.escalated_at = now
        task.version += 1
        levels.append(task.escalation_level)
        events.append(
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
            fields.add("priority")
            # Priority is not status: it does not pass through _apply_change, but it is versioned and recorded.
            events.append(
                TaskEvent(
                    task=task,
                    kind=TaskEventKind.UPDATED,
                    at=now,
                    reason="escalation raised the priority",
                    data={"priority": {"from": before, "to": task.priority}},
                )
            )
    task.updated_at = timezone.now()
    task.save(update_fields=sorted(fields))
    return events, levels


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
    second = now - dt.timedelta(hours=_setting("ESCALATION_SECOND_THRESHOLD_HOURS"))
    batch_size = batch_size or _setting("SWEEP_BATCH_SIZE")
    report = SweepReport(name="escalate", as_of=now, details={"level_1": 0, "level_2": 0})
    started = time.monotonic()
    while max_seconds is None or time.monotonic() - started < max_seconds:
        with transaction.atomic():
            batch = list(
                Task.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status__in=WORKABLE_STATUSES, blocked_by=[], due_at__lt=now)
                .filter(Q(escalation_level=0) | Q(escalation_level=1, due_at__lt=second))
                .order_by("due_at", "pk")[:batch_size]
            )
            if not batch:
                break
            events: list[TaskEvent] = []
            reached: dict[int, list[int]] = {}
            for task in batch:
                task_events, levels = _escalate_task(task, to_level=2 if task.due_at < second else 1, now=now)
                events += task_events
                reached[task.pk] = levels
                for level in levels:
                    report.details[f"level_{level}"] += 1
            TaskEvent.objects.bulk_create(events)
            recipients = recipients_for(batch)
            drafts = [d for task in batch for d in _escalation_drafts(task, reached[task.pk], recipients)]
            report.notifications += len(notifications_create(drafts=drafts, now=now))
        report.batches += 1
        report.rows += len(batch)
        if len(batch) < batch_size:
            break
    report.seconds = time.monotonic() - started
    return report


# --- due-soon reminders -------------------------------------------------------------------------------------


def tasks_remind_due_soon(
    *, now: dt.datetime | None = None, batch_size: int | None = None, max_seconds: float | None = None
) -> SweepReport:
    """The reminder sweep: available, workable tasks due within DUE_SOON_HOURS notify their assignee or pool.

    No lock is needed: a reminder is a notification row unique per (user, task), so two sweeps cannot both
    send one. Tasks already reminded are left out by the query; the rest are walked in (due_at, id) order.
    """
    now = now or timezone.now()
    horizon = now + dt.timedelta(hours=_setting("DUE_SOON_HOURS"))
    batch_size = batch_size or _setting("SWEEP_BATCH_SIZE")
    report = SweepReport(name="remind", as_of=now)
    started = time.monotonic()
    reminded = Notification.objects.filter(task=OuterRef("pk"), kind=NotificationKind.DUE_SOON)
    # A pool nobody on the care team holds has no one to remind; leaving it out in SQL keeps such tasks from
    # being re-read every minute.
    has_pool = CareTeamMember.objects.filter(
        enrollment_id=OuterRef("enrollment_id"), role=OuterRef("role"), period_end__isnull=True
    )
    after: tuple[dt.datetime, int] | None = None
    while max_seconds is None or time.monotonic() - started < max_seconds:
        qs = (
            Task.objects.filter(
                status__in=WORKABLE_STATUSES, blocked_by=[], available_at__lte=now, due_at__gt=now, due_at__lte=horizon
            )
            .filter(Q(assignee__isnull=False) | Exists(has_pool))
            .exclude(Exists(reminded))
        )
        if after is not None:
            qs = qs.filter(Q(due_at__gt=after[0]) | Q(due_at=after[0], pk__gt=after[1]))
        batch = list(qs.order_by("due_at", "pk")[:batch_size])
        if not batch:
            break
        with transaction.atomic():
            recipients = recipients_for(batch)
            drafts = [
                NotificationDraft(
                    user_id=user_id,
                    task_id=task.pk,
                    kind=NotificationKind.DUE_SOON,
                    dedupe_key=f"task:{task.pk}:due_soon",
                    message=task_message(task, "Due soon"),
                )
                for task in batch
                for user_id in recipients[task.pk].workers
            ]
            report.notifications += len(notifications_create(drafts=drafts, now=now))
        report.batches += 1
        report.rows += len(batch)
        after = (batch[-1].due_at, batch[-1].pk)
        if len(batch) < batch_size:
            break
    report.seconds = time.monotonic() - started
    return report
