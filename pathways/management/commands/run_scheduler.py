"""manage.py run_scheduler --as-of <ISO time>: run the scheduler's sweeps once, as of a time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from pathways.services.sweeps import (
    schedules_materialize_due,
    tasks_escalate_overdue,
    tasks_expire_missed,
    tasks_remind_due_soon,
)

# In this order: missed session work is closed before the escalation sweep would call it overdue.
SWEEPS = {
    "materialize": schedules_materialize_due,
    "expire": tasks_expire_missed,
    "escalate": tasks_escalate_overdue,
    "remind": tasks_remind_due_soon,
}


def parse_as_of(value: str) -> dt.datetime:
    """An ISO 8601 time; without an offset it is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(
            f"--as-of must be an ISO 8601 time such as 2026-03-02T15:00:00Z or 2026-03-02T09:00-06:00, got {value!r}"
        ) from exc
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


class Command(BaseCommand):
    help = (
        "Run the scheduler sweeps (materialize due occurrences, close missed session work, escalate overdue "
        "tasks, remind due-soon work) "
        "once, as of now or as of --as-of (catch-up after an outage, simulation). Safe to run alongside beat."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", help="ISO 8601 time (UTC when no offset is given); default now")
        parser.add_argument("--only", choices=sorted(SWEEPS), action="append", help="run only this sweep (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = parse_as_of(options["as_of"]) if options["as_of"] else timezone.now()
        self.stdout.write(f"scheduler as of {as_of.isoformat()}")
        for name in options["only"] or list(SWEEPS):
            report = SWEEPS[name](now=as_of)
            self.stdout.write(f"  {report.summary()}")
