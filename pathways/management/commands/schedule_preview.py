"""manage.py schedule_preview <enrollment id> --days 30: what will come due, per template, in the site's time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from pathways.choices import OPEN_TASK_STATUSES, RecurrenceKind, ScheduleStatus
from pathways.domain.recurrence import PatientCalendar, RecurrenceSpec
from pathways.models import Enrollment, Schedule, Task
from pathways.selectors.schedule import schedule_upcoming_starts


class Command(BaseCommand):
    help = (
        "Print the upcoming occurrences of an enrollment's schedules (open tasks already made, then the "
        "occurrences still to come) in the patient's site time. Identifiers only, no patient details."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("enrollment", type=int, help="enrollment id")
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 1 or options["days"] > 366:
            raise CommandError("--days must be between 1 and 366")
        enrollment = Enrollment.objects.select_related("patient__site").filter(pk=options["enrollment"]).first()
        if enrollment is None:
            raise CommandError(f"enrollment {options['enrollment']} not found")
        tz = enrollment.patient.site.tzinfo
        now = timezone.now()
        end = now + dt.timedelta(days=options["days"])

        def fmt(moment: dt.datetime) -> str:
            return moment.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")

        self.stdout.write(
            f"enrollment {enrollment.pk} ({enrollment.status}), site {enrollment.patient.site.code} "
            f"({tz.key}), next {options['days']} days"
        )
        cal = PatientCalendar.for_patient(enrollment.patient)
        schedules = Schedule.objects.filter(enrollment=enrollment).select_related("task_template")
        for schedule in schedules:
            template = schedule.task_template
            spec = RecurrenceSpec.for_template(template)
            open_tasks = Task.objects.filter(schedule=schedule, status__in=OPEN_TASK_STATUSES, available_at__lt=end)
            lines = [f"{fmt(t.available_at)}  (task {t.pk}, {t.status})" for t in open_tasks.order_by("available_at")]
            upcoming = schedule_upcoming_starts(schedule, cal=cal, end=end)
            lines += [fmt(moment) for moment in upcoming]
            waiting = schedule.status == ScheduleStatus.ACTIVE and schedule.next_due_at is None
            if waiting and spec.kind == RecurrenceKind.AFTER_COMPLETION:
                hours = spec.hours_after_completion
                lines.append(f"next: {hours} h after the open occurrence is completed (or cancelled)")
            state = schedule.status if schedule.status != ScheduleStatus.ACTIVE else template.recurrence_kind
            self.stdout.write(f"{template.code} [{state}]")
            for line in lines or ["(nothing in this window)"]:
                self.stdout.write(f"  {line}")
