"""The materialize sweep: every active schedule with an occurrence inside the horizon gets its tasks."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from pathways.choices import ScheduleStatus
from pathways.models import Schedule, TaskTemplate
from pathways.services.schedules import schedules_materialize
from pathways.services.sweeps._batch import SweepReport, run_batches, setting
from pathways.services.tasks import tasks_close_missed

CATCH_UP_MISSED_REASON = "missed: its session window ended while the scheduler was not running"

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
    Catch-up after an outage: an occurrence of session-bound work whose window has already ended when it is
    made (`expires_at` <= now) is recorded as missed in the same transaction (services/tasks.py
    `tasks_close_missed`), never left as late open work. Returns a SweepReport;
    `details["schedules_finished"]` counts schedules that made their last occurrence, `details["missed"]` the
    occurrences recorded as missed.
    """
    now = now or timezone.now()
    hours = horizon_hours if horizon_hours is not None else setting("MATERIALIZE_HORIZON_HOURS")
    until = now + dt.timedelta(hours=hours)
    size = batch_size or setting("SWEEP_BATCH_SIZE")
    report = SweepReport(name="materialize", as_of=now, details={"schedules_finished": 0, "missed": 0})

    def batch() -> int:
        with transaction.atomic():
            schedules = list(
                Schedule.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("enrollment__patient__site")
                .only(*_SWEEP_ONLY)
                .filter(status=ScheduleStatus.ACTIVE, next_due_at__lte=until)
                .exclude(pk__in=report.failed)
                .order_by("next_due_at", "pk")[:size]
            )
            if not schedules:
                return 0
            _attach_templates(schedules)
            outcome = schedules_materialize(schedules=schedules, until=until, now=now)
            # Catch-up: a session that ended during an outage was missed; it is recorded so, not issued late.
            ended = [t for t in outcome.tasks if t.expires_at is not None and t.expires_at <= now]
            missed = tasks_close_missed(tasks=ended, now=now, reason=CATCH_UP_MISSED_REASON) if ended else []
        report.created += len(outcome.tasks)
        report.details["missed"] += len(missed)
        report.duplicates_skipped += outcome.duplicates_skipped
        report.failed += outcome.failed_schedule_ids
        report.details["schedules_finished"] += outcome.schedules_finished
        return len(schedules)

    return run_batches(report, batch_size=size, max_seconds=max_seconds, batch=batch)
