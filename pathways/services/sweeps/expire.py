"""The expiry sweep: session-bound work still open at the end of its window closes as missed."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from pathways.models import Task
from pathways.services.sweeps._batch import WORKABLE_STATUSES, SweepReport, run_batches, setting
from pathways.services.tasks import tasks_close_missed

MISSED_REASON_TEXT = "missed: not done by the end of its session window"


def tasks_expire_missed(
    *, now: dt.datetime | None = None, batch_size: int | None = None, max_seconds: float | None = None
) -> SweepReport:
    """The expiry sweep: workable tasks whose `expires_at` is at or before `now` close as missed.

    `expires_at` is set on scheduled occurrences of templates with `expires_after_hours` (a dose at a dialysis
    session cannot be given after the session). Batches oldest window first, claimed with FOR UPDATE SKIP
    LOCKED and committed one by one; the close goes through the transition table (services/tasks.py), so a
    re-run or a concurrent sweep finds nothing left to close. Held tasks are left to whoever releases the hold
    (docs/scheduling.md, "Missed sessions"). `report.details["missed"]` counts the tasks closed.
    """
    now = now or timezone.now()
    size = batch_size or setting("SWEEP_BATCH_SIZE")
    report = SweepReport(name="expire", as_of=now, details={"missed": 0})

    def batch() -> int:
        with transaction.atomic():
            tasks = list(
                Task.objects.select_for_update(skip_locked=True, of=("self",))
                # "By the end of its window": a task expiring exactly now is missed (tested at the edge).
                .filter(status__in=WORKABLE_STATUSES, expires_at__lte=now)
                .order_by("expires_at", "pk")[:size]
            )
            if not tasks:
                return 0
            report.details["missed"] += len(tasks_close_missed(tasks=tasks, now=now, reason=MISSED_REASON_TEXT))
        return len(tasks)

    return run_batches(report, batch_size=size, max_seconds=max_seconds, batch=batch)
