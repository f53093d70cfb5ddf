"""manage.py bench_scheduler: time the materializer on N due occurrences, and the empty sweeps over many tasks.

Synthetic data only, created in bulk in the configured database (use a scratch database: the rows stay
unless --cleanup). Prints figures; docs/benchmarks.md ("Scheduler") records them with the machine.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from pathways.choices import EnrollmentStatus, ScheduleStatus, TaskStatus, TemplateStatus
from pathways.models import Enrollment, PathwayTemplate, Patient, Schedule, Site, Task, TaskTemplate
from pathways.services.scheduling import schedules_materialize_due, tasks_escalate_overdue, tasks_remind_due_soon

BENCH_SITE = "bench"
# Daily, weekly, dialysis-day and prerequisite-bearing templates: every code path of the planner.
BENCH_TEMPLATES = ("pain-score", "team-huddle", "sodium-thiosulfate", "pain-score-dialysis", "debridement-decision")


@transaction.atomic
def bench_create_due_schedules(*, enrollments: int, now: dt.datetime, tag: str = "B") -> list[int]:
    """Bulk-create synthetic patients, enrollments and one due schedule per bench template for each.

    Each schedule's next occurrence lies in the ten hours before `now`, so a sweep with a one-hour horizon
    makes exactly one occurrence per schedule. Returns the schedule ids.
    """
    pathway = PathwayTemplate.objects.filter(slug="calciphylaxis", status=TemplateStatus.ACTIVE).first()
    if pathway is None:
        raise CommandError("the calciphylaxis pathway is not loaded: run manage.py load_pathways first")
    templates = list(TaskTemplate.objects.filter(pathway=pathway, code__in=BENCH_TEMPLATES))
    site, _ = Site.objects.get_or_create(
        code=BENCH_SITE, defaults={"name": "Benchmark site (synthetic)", "timezone": "America/Chicago"}
    )
    stamp = f"{tag}{int(time.time() * 1000)}"
    patients = Patient.objects.bulk_create(
        Patient(
            site=site,
            mrn=f"{stamp}-{n:07d}",
            given_name="Bench",
            family_name=f"Synthetic{n}",
            birth_date=dt.date(1960, 1, 1),
            dialysis_modality="HD",
            dialysis_days=[0, 2, 4],
            dialysis_session_time=dt.time(13, 0),
        )
        for n in range(enrollments)
    )
    enrolled = Enrollment.objects.bulk_create(
        Enrollment(
            patient=p, template=pathway, pathway_slug=pathway.slug, status=EnrollmentStatus.ACTIVE, enrolled_at=now
        )
        for p in patients
    )
    schedules = []
    for n, enrollment in enumerate(enrolled):
        for k, template in enumerate(templates):
            due = now - dt.timedelta(minutes=(n * 7 + k * 13) % 600)
            schedules.append(
                Schedule(enrollment=enrollment, task_template=template, anchor_at=due, next_due_at=due, status="active")
            )
    return [s.pk for s in Schedule.objects.bulk_create(schedules, batch_size=5000)]


def bench_fill_tasks(*, total: int, now: dt.datetime, progress: Any = print) -> int:
    """Make the database hold at least `total` tasks (95% completed, 5% open and not yet due) for empty sweeps."""
    have = Task.objects.count()
    missing = total - have
    if missing <= 0:
        return have
    # One enrollment and schedule per 50 tasks, all finished (nothing for the materializer to do).
    enrollment_ids = Schedule.objects.filter(enrollment__patient__site__code=BENCH_SITE).values_list(
        "enrollment_id", flat=True
    )
    if not enrollment_ids.exists():
        bench_create_due_schedules(enrollments=max(1, missing // 250), now=now, tag="F")
        Schedule.objects.filter(enrollment__patient__site__code=BENCH_SITE).update(
            status=ScheduleStatus.FINISHED, next_due_at=None
        )
    enrollment = list(set(enrollment_ids[:1000]))
    template = TaskTemplate.objects.get(pathway__status=TemplateStatus.ACTIVE, code="pain-score")
    chunk = 100_000
    made = 0
    while made < missing:
        size = min(chunk, missing - made)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO pathways_task (enrollment_id, template_id, rule_code, title, prong, role, status,
                        status_before_hold, priority, available_at, due_at, blocked_by, instructions, outcome,
                        version, escalation_level, created_at, updated_at)
                    SELECT (%(enrollments)s::bigint[])[1 + g %% cardinality(%(enrollments)s::bigint[])], %(template)s,
                        '', 'Bench task', 'support', 'pain_palliative',
                        CASE WHEN g %% 20 = 0 THEN 'requested' ELSE 'completed' END, '', 'routine',
                        %(now)s::timestamptz - (g %% 1000) * interval '1 hour',
                        CASE WHEN g %% 20 = 0 THEN %(now)s::timestamptz + interval '30 days'
                             ELSE %(now)s::timestamptz - (g %% 1000) * interval '1 hour' + interval '1 day' END,
                        '[]'::jsonb, '', '', 1, 0, %(now)s, %(now)s
                    FROM generate_series(%(start)s, %(stop)s) AS g
                    """,
                    {
                        "enrollments": enrollment,
                        "template": template.pk,
                        "now": now,
                        "start": made,
                        "stop": made + size - 1,
                    },
                )
        else:
            Task.objects.bulk_create(
                (
                    Task(
                        enrollment_id=enrollment[g % len(enrollment)],
                        template=template,
                        title="Bench task",
                        prong="support",
                        role="pain_palliative",
                        status=TaskStatus.REQUESTED if g % 20 == 0 else TaskStatus.COMPLETED,
                        available_at=now - dt.timedelta(hours=g % 1000),
                        due_at=now + dt.timedelta(days=30),
                    )
                    for g in range(made, made + size)
                ),
                batch_size=5000,
            )
        made += size
        progress(f"  tasks: {have + made:,} / {total:,}")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE pathways_task")
            cursor.execute("ANALYZE pathways_schedule")
    return have + made


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"
    )


class Command(BaseCommand):
    help = (
        "Benchmark the scheduler: materialize N due occurrences, then time the sweeps with nothing due over "
        "--tasks existing tasks. Writes synthetic rows to the configured database; use a scratch database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--occurrences", type=int, default=10_000, help="due occurrences to materialize")
        parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks in the table for the empty sweep")
        parser.add_argument("--repeat", type=int, default=20, help="empty-sweep repetitions")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["occurrences"] < 0 or options["tasks"] < 0 or options["repeat"] < 1:
            raise CommandError("--occurrences and --tasks must be 0 or more, --repeat at least 1")
        db = connection.settings_dict
        self.stdout.write(f"machine:  {_machine()}")
        self.stdout.write(f"database: {connection.vendor} {db.get('HOST') or ''} {db['NAME']}")
        now = timezone.now()
        per = len(BENCH_TEMPLATES)
        enrollments = -(-options["occurrences"] // per)
        if enrollments:
            self.stdout.write(f"[1/2] creating {enrollments * per:,} due schedules ({enrollments:,} enrollments)")
            bench_create_due_schedules(enrollments=enrollments, now=now)
            report = schedules_materialize_due(now=now, horizon_hours=1, batch_size=options["batch_size"])
            rate = report.created / report.seconds if report.seconds else 0.0
            self.stdout.write(
                f"  materialized {report.created:,} occurrences from {report.rows:,} schedules in "
                f"{report.batches} batches: {report.seconds:.2f} s = {rate:,.0f} occurrences/s"
            )
        self.stdout.write(f"[2/2] empty sweeps over {options['tasks']:,} tasks")
        total = bench_fill_tasks(total=options["tasks"], now=now, progress=self.stdout.write)
        Schedule.objects.filter(status=ScheduleStatus.ACTIVE, next_due_at__lte=now + dt.timedelta(days=2)).update(
            next_due_at=now + dt.timedelta(days=30)
        )
        self.stdout.write(f"  tasks in the table: {total:,}; schedules: {Schedule.objects.count():,}")
        sweeps = {
            "materialize": lambda: schedules_materialize_due(now=now),
            "escalate": lambda: tasks_escalate_overdue(now=now),
            "remind": lambda: tasks_remind_due_soon(now=now),
        }
        for name, run in sweeps.items():
            run()  # catches up whatever step 1 left due, and warms the connection
            timings = []
            for _ in range(options["repeat"]):
                started = time.perf_counter()
                report = run()
                timings.append((time.perf_counter() - started) * 1000)
                if report.created or report.notifications or report.details.get("level_1"):
                    raise CommandError(f"the {name} sweep found work; the empty-sweep figure would be wrong")
            self.stdout.write(
                f"  empty {name} sweep: median {statistics.median(timings):.2f} ms, "
                f"min {min(timings):.2f} ms, max {max(timings):.2f} ms ({options['repeat']} runs)"
            )
