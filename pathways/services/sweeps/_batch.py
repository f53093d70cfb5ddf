"""The one batch loop every sweep runs, and the report it fills."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from pathways.choices import TaskStatus

# Work that can be done now: held tasks are paused on purpose and are neither escalated nor reminded.
WORKABLE_STATUSES = (TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS)


def setting(name: str) -> int:
    """An integer from settings.CAREPATH (e.g. SWEEP_BATCH_SIZE, MATERIALIZE_HORIZON_HOURS)."""
    return int(settings.CAREPATH[name])


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


def run_batches(
    report: SweepReport, *, batch_size: int, max_seconds: float | None, batch: Callable[[], int]
) -> SweepReport:
    """Run `batch` until it claims fewer than `batch_size` rows, or `max_seconds` stops new batches starting.

    `batch()` claims, processes and commits one batch and returns how many rows it claimed (0 ends the run);
    it adds what it did to `report`. This loop counts batches and rows and times the run. Beat runs the sweep
    again a minute later, so a run cut short by `max_seconds` loses nothing.
    """
    started = time.monotonic()
    while max_seconds is None or time.monotonic() - started < max_seconds:
        rows = batch()
        if not rows:
            break
        report.batches += 1
        report.rows += rows
        if rows < batch_size:
            break
    report.seconds = time.monotonic() - started
    return report
