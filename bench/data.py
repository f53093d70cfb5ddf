"""The ONE synthetic data generator of the benchmarks: a health-system network that has run Carepath for years.

Shape (docs/benchmarks.md, "Data shape"): three sites; ten specialists per specialist role per site (330
specialists), two coordinators per site and one auditor; patients enrolled at a steady ENROLLMENTS_PER_DAY, so
a bigger task table means a longer history, not a busier ward: the newest ACTIVE_DAYS of enrollments are live
(about 200 at every scale), older ones ended (completed, some revoked). Each enrollment has a full care team
(one specialist per role plus a coordinator), one schedule per recurring template, and TASKS_PER_ENROLLMENT
tasks drawn from the pathway's templates in proportion to their cadence, in every state; only templates that
apply to the patient, decided by the product's template_applies as enrollment decides (no sodium thiosulfate
for a patient not on hemodialysis, no INR checks without warfarin). History mostly
completed (on time or late), some cancelled, failed (missed, for session-bound work) or entered in error; live
work requested (in the role pool or assigned), accepted, in progress, on hold, some overdue and escalated.

A second, open-heavy shape (`shape=OPEN`, issue 15) is a busy network instead of a long one: every enrollment
is live, its tasks fall due over the next two weeks (so nearly all are open, most of them requested in a role
pool), the open work grows with the scale, and each specialist serves on a fixed number of care teams
(OPEN_TEAMS_PER_SPECIALIST; more specialists are hired as the network grows), so a given specialist's visible work
is the same size at every scale while the table around it grows. It has sites and staff of its own.

PostgreSQL only: rows go in with COPY FROM STDIN in chunks (one transaction each), with a progress bar. Filling
is incremental: `bench_fill(tasks=N)` adds what is missing to reach N tasks at the bench sites, so a run can
measure at 10k, then grow the same data to 100k and 1M.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandError
from django.db import OperationalError, connection, transaction
from tqdm import tqdm

from pathways.choices import (
    OPEN_TASK_STATUSES,
    SPECIALIST_ROLES,
    EnrollmentStatus,
    RecurrenceKind,
    Role,
    ScheduleStatus,
    TaskStatus,
    TemplateStatus,
)
from pathways.domain.applicability import template_applies
from pathways.models import (
    Assessment,
    AuditEvent,
    CareTeamMember,
    Enrollment,
    EnrollmentEvent,
    FirstAction,
    Flag,
    MedicationChange,
    Notification,
    Observation,
    PathwayTemplate,
    Patient,
    RuleFiring,
    Schedule,
    Site,
    Task,
    TaskEvent,
    TaskTemplate,
    User,
)

# --- the shape ------------------------------------------------------------------------------------------------
BENCH_SITES = (
    ("bench-phx", "Bench Phoenix (synthetic)", "America/Phoenix"),
    ("bench-chi", "Bench Chicago (synthetic)", "America/Chicago"),
    ("bench-nyc", "Bench New York (synthetic)", "America/New_York"),
)
# Enrollment latency and the materializer sweep make their own patients here, outside the measured sites.
SIDE_SITE = "bench-side"
SPECIALISTS_PER_ROLE_PER_SITE = 10
COORDINATORS_PER_SITE = 2
TASKS_PER_ENROLLMENT = 50
ENROLLMENTS_PER_DAY = 2.5
ACTIVE_DAYS = 80  # a calciphylaxis course: enrollments younger than this are live
CHUNK_ENROLLMENTS = 2_000  # 100,000 tasks per COPY transaction
BENCH_PASSWORD_HASH = "!bench-no-login"  # noqa: S105 - unusable: the benchmark authenticates with tokens
SPECIALISTS: list[str] = sorted(str(r) for r in SPECIALIST_ROLES)
# The open-heavy shape: each specialist is on this many live care teams, whatever the scale.
OPEN_TEAMS_PER_SPECIALIST = 40
OPEN_DUE_FROM = dt.timedelta(days=-1)  # open-heavy tasks fall due from a day ago ...
OPEN_DUE_TO = dt.timedelta(days=13)  # ... to two weeks ahead


@dataclass(frozen=True)
class Shape:
    """A data shape: its own sites and staff, so both shapes can live in one database."""

    name: str
    sites: tuple[tuple[str, str, str], ...]
    user_prefix: str
    open_heavy: bool

    @property
    def site_codes(self) -> list[str]:
        return [code for code, _, _ in self.sites]


HISTORY = Shape("history", BENCH_SITES, "bench-", open_heavy=False)
OPEN = Shape(
    "open",
    (
        ("benchopen-phx", "Bench open-heavy Phoenix (synthetic)", "America/Phoenix"),
        ("benchopen-chi", "Bench open-heavy Chicago (synthetic)", "America/Chicago"),
        ("benchopen-nyc", "Bench open-heavy New York (synthetic)", "America/New_York"),
    ),
    "benchopen-",
    open_heavy=True,
)
SHAPES = {shape.name: shape for shape in (HISTORY, OPEN)}

# Tasks per week each recurrence produces (roughly), so the task mix looks like the pathway's cadence.
_WEEKLY_WEIGHT = {
    RecurrenceKind.DIALYSIS_DAYS: 3.0,
    RecurrenceKind.AFTER_COMPLETION: 3.5,
    RecurrenceKind.WEEKDAYS: 2.0,
    RecurrenceKind.ONCE: 0.1,
    RecurrenceKind.ON_TRIGGER: 0.05,
}


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise CommandError(
            "the benchmarks need PostgreSQL: DJANGO_SETTINGS_MODULE=carepath.bench_settings "
            "DATABASE_URL=postgres://…/carepath_bench_data manage.py bench (docs/benchmarks.md)"
        )
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        name = connection.settings_dict["NAME"]
        raise CommandError(
            f"cannot connect to the bench database {name!r}: {str(exc).strip().splitlines()[-1]}. "
            f"Create the scratch database first (createdb -h 127.0.0.1 -U postgres {name}); docs/benchmarks.md"
        ) from None


def active_pathway() -> PathwayTemplate:
    pathway = PathwayTemplate.objects.filter(slug="calciphylaxis", status=TemplateStatus.ACTIVE).first()
    if pathway is None:
        raise CommandError("the calciphylaxis pathway is not loaded: run manage.py load_pathways first")
    return pathway


@dataclass
class Population:
    """The bench sites and staff (created once, reused by every scale)."""

    site_ids: list[int]
    # (site index, role) -> specialist user ids
    specialists: dict[tuple[int, str], list[int]]
    coordinators: dict[int, list[int]]
    auditor_id: int


def _template_weight(template: TaskTemplate) -> float:
    if template.recurrence_kind == RecurrenceKind.INTERVAL:
        recurrence = template.recurrence or {}
        days = recurrence.get("every_days") or (recurrence.get("every_hours", 24) / 24)
        return 7.0 / max(float(days), 1 / 24)
    return _WEEKLY_WEIGHT.get(RecurrenceKind(template.recurrence_kind), 1.0)


@transaction.atomic
def bench_population(shape: Shape = HISTORY, specialists_per_role: int = SPECIALISTS_PER_ROLE_PER_SITE) -> Population:
    """A shape's sites, `specialists_per_role` specialists per role and site, coordinators and an auditor,
    created as needed (idempotent; the open-heavy shape asks for more specialists as it grows)."""
    require_postgresql()
    prefix = shape.user_prefix
    sites = []
    for code, name, tz in shape.sites:
        site, _ = Site.objects.get_or_create(code=code, defaults={"name": name, "timezone": tz})
        sites.append(site)
    Site.objects.get_or_create(code=SIDE_SITE, defaults={"name": "Bench side site", "timezone": "America/Chicago"})
    wanted: list[tuple[str, list[str], list[Site]]] = []
    for i, site in enumerate(sites):
        for role in SPECIALISTS:
            wanted += [(f"{prefix}{i}-{role}-{k}", [role], [site]) for k in range(specialists_per_role)]
        wanted += [(f"{prefix}{i}-coordinator-{k}", [Role.COORDINATOR], [site]) for k in range(COORDINATORS_PER_SITE)]
    wanted.append((f"{prefix}auditor", [Role.AUDITOR], sites))
    existing = set(User.objects.filter(username__startswith=prefix).values_list("username", flat=True))
    missing = [w for w in wanted if w[0] not in existing]
    if missing:
        made = User.objects.bulk_create(
            User(username=name, roles=roles, password=BENCH_PASSWORD_HASH, email=f"{name}@bench.invalid")
            for name, roles, _ in missing
        )
        User.sites.through.objects.bulk_create(
            User.sites.through(user_id=user.pk, site_id=site.pk)
            for user, (_, _, user_sites) in zip(made, missing, strict=True)
            for site in user_sites
        )
    ids = dict(User.objects.filter(username__startswith=prefix).values_list("username", "pk"))
    return Population(
        site_ids=[s.pk for s in sites],
        specialists={
            (i, role): [ids[f"{prefix}{i}-{role}-{k}"] for k in range(specialists_per_role)]
            for i in range(len(sites))
            for role in SPECIALISTS
        },
        coordinators={i: [ids[f"{prefix}{i}-coordinator-{k}"] for k in range(COORDINATORS_PER_SITE)] for i in range(3)},
        auditor_id=ids[f"{prefix}auditor"],
    )


def bench_task_count(shape: Shape = HISTORY) -> int:
    """Tasks at the three measured sites of a shape."""
    return Task.objects.filter(enrollment__patient__site__code__in=shape.site_codes).count()


def _reserve_ids(model: type[Any], count: int) -> list[int]:
    """Take `count` ids from the table's sequence, so COPY can write rows that refer to each other."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
        return [row[0] for row in cursor.fetchall()]


def _copy(model: type[Any] | str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into a model's table (text format: JSON columns are passed as JSON strings)."""
    table = model._meta.db_table if hasattr(model, "_meta") else str(model)
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


@dataclass
class _Template:
    pk: int
    code: str
    title: str
    prong: str
    role: str
    priority: str
    within: dt.timedelta
    instructions: str
    recurring: bool
    # Session-bound (expires_after_hours): undone by the end of its window, it was missed rather than failed.
    session_bound: bool = False


class _Applicable:
    """The pathway's templates that apply to a patient, with their weights, decided by the product's own rule
    (pathways.domain.applicability.template_applies, which enrollment uses), so the bench never gives a patient a
    task or schedule that enrolling them would not. Memoized per patient shape (modality, medications): a fill
    has a handful of shapes and tens of thousands of patients."""

    def __init__(self, pathway: PathwayTemplate) -> None:
        self._models = list(pathway.task_templates.order_by("position"))
        self._templates = [
            _Template(
                pk=t.pk,
                code=t.code,
                title=t.title,
                prong=t.prong,
                role=t.role,
                priority=t.priority,
                within=dt.timedelta(hours=t.due_within_hours),
                instructions=t.instructions,
                recurring=t.recurrence_kind not in (RecurrenceKind.ONCE, RecurrenceKind.ON_TRIGGER),
                session_bound=t.expires_after_hours is not None,
            )
            for t in self._models
        ]
        self._weights = [_template_weight(t) for t in self._models]
        self._by_shape: dict[tuple[str, tuple[str, ...]], tuple[list[_Template], list[float]]] = {}

    def for_patient(self, *, modality: str, medications: Sequence[str]) -> tuple[list[_Template], list[float]]:
        """(templates, weights) for a patient with this dialysis modality and these risk medications."""
        key = (modality, tuple(sorted(medications)))
        if key not in self._by_shape:
            # An unsaved Patient with the generated row's values: template_applies reads nothing else.
            patient = Patient(dialysis_modality=modality, risk_medications=list(medications))
            chosen = [
                (template, weight)
                for model, template, weight in zip(self._models, self._templates, self._weights, strict=True)
                if template_applies(model, patient)
            ]
            if not chosen:
                raise CommandError(f"no template of the pathway applies to a {modality} patient on {medications}")
            self._by_shape[key] = ([t for t, _ in chosen], [w for _, w in chosen])
        return self._by_shape[key]


@dataclass
class FillReport:
    tasks_before: int
    tasks_after: int
    enrollments_added: int
    seconds: float
    details: dict[str, int] = field(default_factory=dict)


_TASK_COLUMNS = [
    "id",
    "enrollment_id",
    "template_id",
    "schedule_id",
    "occurrence",
    "rule_code",
    "title",
    "prong",
    "role",
    "assignee_id",
    "status",
    "status_before_hold",
    "hold_until",
    "priority",
    "available_at",
    "due_at",
    "blocked_by",
    "instructions",
    "started_at",
    "completed_at",
    "completed_by_id",
    "outcome",
    "version",
    "escalation_level",
    "escalated_at",
    "created_at",
    "updated_at",
]


def _pick(r: float, table: tuple[tuple[float, TaskStatus], ...]) -> TaskStatus | None:
    """The first status whose cumulative share exceeds r."""
    return next((status for share, status in table if r < share), None)


def _task_rows(
    *,
    rng: random.Random,
    enrollment_id: int,
    enrolled_at: dt.datetime,
    ended_at: dt.datetime | None,
    count: int,
    now: dt.datetime,
    templates: list[_Template],
    weights: list[float],
    team: dict[str, int],
    task_ids: Iterable[int],
    open_heavy: bool = False,
) -> Iterable[tuple[Any, ...]]:
    hour = dt.timedelta(hours=1)
    start, end = enrolled_at, (ended_at if ended_at is not None else now + dt.timedelta(days=4))
    if open_heavy:
        start, end = now + OPEN_DUE_FROM, now + OPEN_DUE_TO
    span = (end - start).total_seconds()
    chosen = rng.choices(templates, weights=weights, k=count)
    # chosen first: zip stops on it without drawing an id that would then be lost.
    for j, (t, task_id) in enumerate(zip(chosen, task_ids, strict=False)):
        due = start + dt.timedelta(seconds=span * (j + rng.random()) / count)
        available = due - t.within
        created = min(max(enrolled_at, available - dt.timedelta(days=1)), now)
        r = rng.random()
        if ended_at is not None:
            # History: the course is over, nothing is left open.
            status = _pick(r, ((0.89, TaskStatus.COMPLETED), (0.94, TaskStatus.CANCELLED), (0.98, TaskStatus.FAILED)))
            status = status or TaskStatus.ENTERED_IN_ERROR
        elif due < now - dt.timedelta(days=2):
            status = (
                _pick(
                    r,
                    (
                        (0.80, TaskStatus.COMPLETED),
                        (0.85, TaskStatus.CANCELLED),
                        (0.88, TaskStatus.FAILED),
                        (0.89, TaskStatus.ENTERED_IN_ERROR),
                        (0.96, TaskStatus.REQUESTED),  # overdue, still in the pool or assigned
                        (0.99, TaskStatus.ACCEPTED),
                    ),
                )
                or TaskStatus.IN_PROGRESS
            )
        elif due < now:
            status = TaskStatus.COMPLETED if r < 0.5 else rng.choice((TaskStatus.REQUESTED, TaskStatus.ACCEPTED))
        else:
            status = (
                TaskStatus.REQUESTED
                if r < 0.70
                else TaskStatus.ACCEPTED
                if r < 0.90
                else TaskStatus.IN_PROGRESS
                if r < 0.95
                else TaskStatus.ON_HOLD
            )
        if status == TaskStatus.FAILED and t.session_bound:
            status = TaskStatus.MISSED  # a dose not given at its session is missed (docs/scheduling.md)
        assigned = status != TaskStatus.REQUESTED or rng.random() < 0.25
        if status == TaskStatus.CANCELLED:
            assigned = rng.random() < 0.5
        assignee = team.get(t.role) if assigned else None
        started = completed = completed_by = escalated_at = None
        escalation = 0
        outcome = ""
        version = 1 + (assignee is not None)
        if status == TaskStatus.COMPLETED:
            completed = min(due + dt.timedelta(hours=rng.uniform(-24, 30)), now - dt.timedelta(minutes=5))
            completed = max(completed, created + dt.timedelta(minutes=5))
            started = completed - dt.timedelta(minutes=rng.randint(10, 120))
            completed_by, outcome, version = assignee, "Done (synthetic)", 5
            if completed > due + dt.timedelta(hours=6) and rng.random() < 0.5:
                escalation, escalated_at = 1, due + dt.timedelta(minutes=1)
        elif status == TaskStatus.IN_PROGRESS:
            started, version = min(now, due) - hour, 4
        elif status in (TaskStatus.ACCEPTED, TaskStatus.ON_HOLD):
            version = 3
        if status in (TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS) and due < now:
            escalation = 2 if due < now - dt.timedelta(hours=24) else 1
            escalated_at = due + dt.timedelta(minutes=1)
        updated = completed or escalated_at or created
        yield (
            task_id,
            enrollment_id,
            t.pk,
            None,
            None,
            "",
            t.title,
            t.prong,
            t.role,
            assignee,
            status.value,
            TaskStatus.ACCEPTED.value if status == TaskStatus.ON_HOLD else "",
            None,
            t.priority,
            available,
            due,
            "[]",
            t.instructions,
            started,
            completed,
            completed_by,
            outcome,
            version + escalation,
            escalation,
            escalated_at,
            created,
            updated,
        )


def bench_fill(*, tasks: int, now: dt.datetime, progress: bool = True, shape: Shape = HISTORY) -> FillReport:
    """Add enrollments (oldest last) with their patients, care teams, schedules, tasks and events until the
    shape's sites hold `tasks` tasks. Then ANALYZE (stale statistics on freshly filled tables mislead the
    planner)."""
    require_postgresql()
    started = time.perf_counter()
    before = bench_task_count(shape)
    missing = tasks - before
    report = FillReport(tasks_before=before, tasks_after=before, enrollments_added=0, seconds=0.0)
    if missing <= 0:
        return report
    pathway = active_pathway()
    applicable = _Applicable(pathway)
    n0 = Enrollment.objects.filter(patient__site__code__in=shape.site_codes).count()
    count = -(-missing // TASKS_PER_ENROLLMENT)
    per_role = SPECIALISTS_PER_ROLE_PER_SITE
    if shape.open_heavy:
        # Enough specialists that none serves on more than OPEN_TEAMS_PER_SPECIALIST care teams.
        per_role = max(1, math.ceil(math.ceil((n0 + count) / 3) / OPEN_TEAMS_PER_SPECIALIST))
    population = bench_population(shape, per_role)
    bar = tqdm(total=missing, unit="task", unit_scale=True, disable=not progress, desc=f"fill to {tasks:,}")
    made = 0
    for chunk_start in range(n0, n0 + count, CHUNK_ENROLLMENTS):
        chunk = range(chunk_start, min(chunk_start + CHUNK_ENROLLMENTS, n0 + count))
        with transaction.atomic():
            made += _fill_chunk(
                chunk=chunk,
                remaining=missing - made,
                now=now,
                population=population,
                pathway=pathway,
                applicable=applicable,
                bar=bar,
                shape=shape,
            )
        report.enrollments_added += len(chunk)
    bar.close()
    # VACUUM sets the visibility map, as autovacuum soon would on a table whose history no longer changes (the
    # report queries scan a covering index without visiting the rows); inside a transaction (tests) only ANALYZE.
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (INDEX_CLEANUP ON, ANALYZE)"
    with connection.cursor() as cursor:
        for model in (
            Patient,
            Enrollment,
            Task,
            FirstAction,
            Schedule,
            User,
            Site,
            "pathways_careteammember",
            "pathways_taskevent",
        ):
            table = model if isinstance(model, str) else model._meta.db_table
            cursor.execute(f"{command} {table}")
    report.tasks_after = before + made
    report.seconds = time.perf_counter() - started
    return report


def _fill_chunk(
    *,
    chunk: range,
    remaining: int,
    now: dt.datetime,
    population: Population,
    pathway: PathwayTemplate,
    applicable: _Applicable,
    bar: Any,
    shape: Shape = HISTORY,
) -> int:
    n_enr = len(chunk)
    patient_ids = _reserve_ids(Patient, n_enr)
    enrollment_ids = _reserve_ids(Enrollment, n_enr)
    patients: list[tuple[Any, ...]] = []
    enrollments: list[tuple[Any, ...]] = []
    members: list[tuple[Any, ...]] = []
    schedules: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    plans = []
    for k, n in enumerate(chunk):
        rng = random.Random(n)
        site = n % 3
        age = dt.timedelta(days=n / ENROLLMENTS_PER_DAY, hours=rng.uniform(0, 9))
        if shape.open_heavy:
            age = dt.timedelta(days=(n * 0.618) % (ACTIVE_DAYS - 1), hours=rng.uniform(0, 9))  # every one live
        enrolled_at = now - age
        warfarin = rng.random() < 0.15
        modality = rng.choices(("HD", "PD", "transplant", "none"), weights=(80, 10, 5, 5))[0]
        medications = ["warfarin"] if warfarin else []
        usable, weights = applicable.for_patient(modality=modality, medications=medications)
        patients.append(
            (
                patient_ids[k],
                population.site_ids[site],
                f"{shape.user_prefix.upper()}{n:07d}",
                "Synthetic",
                f"Patient{n}",
                dt.date(1945 + n % 35, 1 + n % 12, 1 + n % 28),
                rng.choice(("female", "male")),
                modality,
                json.dumps([0, 2, 4] if n % 2 else [1, 3, 5]) if modality == "HD" else "[]",
                dt.time(13, 0) if n % 2 else dt.time(7, 0),
                "[]",
                json.dumps(medications),
                "[]",
                enrolled_at - dt.timedelta(days=2),
            )
        )
        if age < dt.timedelta(days=ACTIVE_DAYS):
            status = EnrollmentStatus.ON_HOLD if n % 20 == 7 else EnrollmentStatus.ACTIVE
            ended_at, held_at = None, (now - dt.timedelta(days=1) if n % 20 == 7 else None)
        else:
            status = EnrollmentStatus.REVOKED if n % 10 == 3 else EnrollmentStatus.COMPLETED
            ended_at, held_at = enrolled_at + dt.timedelta(days=rng.uniform(56, ACTIVE_DAYS)), None
        coordinator = population.coordinators[site][n % COORDINATORS_PER_SITE]
        enrollments.append(
            (
                enrollment_ids[k],
                patient_ids[k],
                pathway.pk,
                pathway.slug,
                status.value,
                coordinator,
                enrolled_at,
                coordinator,
                held_at,
                ended_at,
                "course finished (synthetic)" if ended_at else "",
                json.dumps(medications),
                "[]",
            )
        )
        if shape.open_heavy:
            # Specialist k of each role takes the site's enrollments k*TEAMS .. (k+1)*TEAMS - 1: a fixed team load.
            team = {
                role: population.specialists[(site, role)][(n // 3) // OPEN_TEAMS_PER_SPECIALIST]
                for role in SPECIALISTS
            }
        else:
            team = {
                role: population.specialists[(site, role)][(n * 7 + r * 3) % SPECIALISTS_PER_ROLE_PER_SITE]
                for r, role in enumerate(SPECIALISTS)
            }
        members += [(enrollment_ids[k], uid, role, enrolled_at, None) for role, uid in team.items()]
        members.append((enrollment_ids[k], coordinator, Role.COORDINATOR.value, enrolled_at, None))
        for t in usable:
            if not t.recurring:
                continue
            live = ended_at is None
            schedules.append(
                (
                    enrollment_ids[k],
                    t.pk,
                    (ScheduleStatus.PAUSED if status == EnrollmentStatus.ON_HOLD else ScheduleStatus.ACTIVE).value
                    if live
                    else ScheduleStatus.FINISHED.value,
                    enrolled_at,
                    now + dt.timedelta(hours=25 + rng.uniform(0, 144)) if live else None,
                    rng.randint(1, 20),
                    0,
                    None,
                    held_at,
                    "",
                    None if live else ended_at,
                    now,
                )
            )
        events.append((enrollment_ids[k], "enrolled", enrolled_at, coordinator, "", "{}"))
        if ended_at is not None:
            events.append((enrollment_ids[k], status.value, ended_at, coordinator, "", "{}"))
        n_tasks = min(TASKS_PER_ENROLLMENT, remaining - k * TASKS_PER_ENROLLMENT)
        if n_tasks > 0:
            plans.append((rng, enrollment_ids[k], enrolled_at, ended_at, n_tasks, team, usable, weights))
    _copy(
        Patient,
        [
            "id",
            "site_id",
            "mrn",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "dialysis_modality",
            "dialysis_days",
            "dialysis_session_time",
            "risk_factors",
            "risk_medications",
            "current_therapies",
            "created_at",
        ],
        patients,
    )
    _copy(
        Enrollment,
        [
            "id",
            "patient_id",
            "template_id",
            "pathway_slug",
            "status",
            "coordinator_id",
            "enrolled_at",
            "enrolled_by_id",
            "held_at",
            "ended_at",
            "end_reason",
            "medications_at_enrollment",
            "risk_factors_at_enrollment",
        ],
        enrollments,
    )
    _copy("pathways_careteammember", ["enrollment_id", "user_id", "role", "period_start", "period_end"], members)
    _copy(
        Schedule,
        [
            "enrollment_id",
            "task_template_id",
            "status",
            "anchor_at",
            "next_due_at",
            "occurrences_made",
            "skipped_occurrences",
            "last_completed_at",
            "paused_at",
            "pause_reason",
            "finished_at",
            "updated_at",
        ],
        schedules,
    )
    _copy("pathways_enrollmentevent", ["enrollment_id", "kind", "at", "actor_id", "reason", "data"], events)
    total = sum(p[4] for p in plans)
    reserved = _reserve_ids(Task, total)
    task_ids = iter(reserved)
    made = 0

    def rows() -> Iterable[tuple[Any, ...]]:
        nonlocal made
        for rng, enrollment_id, enrolled_at, ended_at, n_tasks, team, usable, weights in plans:
            yield from _task_rows(
                rng=rng,
                enrollment_id=enrollment_id,
                enrolled_at=enrolled_at,
                ended_at=ended_at,
                count=n_tasks,
                now=now,
                templates=usable,
                weights=weights,
                team=team,
                task_ids=task_ids,
                open_heavy=shape.open_heavy,
            )
            made += n_tasks
            bar.update(n_tasks)

    # COPY fires the first-action triggers (migration 0006): pathways_firstaction fills as the tasks go in. Kept
    # on (one mechanism): at 1,000,000 tasks the fill took ~19 % longer than with the trigger disabled, under
    # the ~25 % that would justify disabling it here and filling the table with a second statement.
    _copy(Task, _TASK_COLUMNS, rows())
    if reserved:
        # One "created" event per task, written by the server from the rows just copied.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO pathways_taskevent (task_id, kind, at, actor_id, from_status, to_status, reason, data)
                SELECT id, 'created', created_at, NULL, '', 'requested', 'synthetic', '{}'::jsonb
                FROM pathways_task WHERE id >= %s AND id <= %s
                """,
                [min(reserved), max(reserved)],
            )
    return made


# Daily, weekly, dialysis-day and prerequisite-bearing templates: every code path of the planner.
SWEEP_TEMPLATES = ("pain-score", "team-huddle", "sodium-thiosulfate", "pain-score-dialysis", "debridement-decision")


@transaction.atomic
def bench_create_due_schedules(*, enrollments: int, now: dt.datetime, tag: str = "B") -> list[int]:
    """Bulk-create synthetic patients, enrollments and one due schedule per SWEEP_TEMPLATES template for each,
    at the side site (outside the measured sites).

    Each schedule's next occurrence lies in the ten hours before `now`, so a sweep with a one-hour horizon
    makes exactly one occurrence per schedule. Returns the schedule ids. Works on SQLite too (tests).
    """
    pathway = active_pathway()
    templates = list(TaskTemplate.objects.filter(pathway=pathway, code__in=SWEEP_TEMPLATES))
    site, _ = Site.objects.get_or_create(
        code=SIDE_SITE, defaults={"name": "Bench side site (synthetic)", "timezone": "America/Chicago"}
    )
    stamp = f"{tag}{int(time.time() * 1000)}"
    patients = Patient.objects.bulk_create(
        (
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
        ),
        batch_size=5000,
    )
    enrolled = Enrollment.objects.bulk_create(
        (
            Enrollment(
                patient=p, template=pathway, pathway_slug=pathway.slug, status=EnrollmentStatus.ACTIVE, enrolled_at=now
            )
            for p in patients
        ),
        batch_size=5000,
    )
    schedules = []
    for n, enrollment in enumerate(enrolled):
        for k, template in enumerate(templates):
            due = now - dt.timedelta(minutes=(n * 7 + k * 13) % 600)
            schedules.append(
                Schedule(enrollment=enrollment, task_template=template, anchor_at=due, next_due_at=due, status="active")
            )
    return [s.pk for s in Schedule.objects.bulk_create(schedules, batch_size=5000)]


@transaction.atomic
def bench_remove_side_data() -> None:
    """Delete what the enrollment and sweep measurements made at the side site, so the next scale's figures see
    only the generated network (tasks, their events and notifications, schedules, enrollments, patients)."""
    enrollments = Enrollment.objects.filter(patient__site__code=SIDE_SITE)
    # The FHIR Bundle measurement's clinical rows first: they protect the tasks and observations they point at.
    RuleFiring.objects.filter(enrollment__in=enrollments).delete()
    Flag.objects.filter(enrollment__in=enrollments).delete()
    Observation.objects.filter(enrollment__in=enrollments).delete()
    Assessment.objects.filter(enrollment__in=enrollments).delete()
    MedicationChange.objects.filter(enrollment__in=enrollments).delete()
    tasks = Task.objects.filter(enrollment__in=enrollments)
    TaskEvent.objects.filter(task__in=tasks).delete()
    Notification.objects.filter(task__in=tasks).delete()
    tasks.delete()
    Schedule.objects.filter(enrollment__in=enrollments).delete()
    CareTeamMember.objects.filter(enrollment__in=enrollments).delete()
    EnrollmentEvent.objects.filter(enrollment__in=enrollments).delete()
    enrollments.delete()
    # The audit trail is append-only and keeps its patients: a side patient whose record was read or written
    # through the API (the FHIR measurement) stays, without an enrollment, outside the bench sites' counts.
    audited = AuditEvent.objects.filter(patient__site__code=SIDE_SITE).values("patient_id")
    Patient.objects.filter(site__code=SIDE_SITE).exclude(pk__in=audited).delete()


def bench_create_enrollment_copies(*, model: Enrollment, count: int, tag: str = "M") -> list[int]:
    """Bulk-create `count` side-site enrollments shaped exactly like `model` (a real enrollment made by
    enrollment_apply): the same pathway version, one schedule per schedule of the model (same template, anchor,
    next occurrence and count made) and a copy of each of its open tasks. Returns the new enrollment ids."""
    site = model.patient.site
    stamp = f"{tag}{int(time.time() * 1000)}"
    patient_fields = {
        "dialysis_modality": model.patient.dialysis_modality,
        "dialysis_days": model.patient.dialysis_days,
        "dialysis_session_time": model.patient.dialysis_session_time,
        "risk_medications": model.patient.risk_medications,
    }
    patients = Patient.objects.bulk_create(
        (
            Patient(
                site=site,
                mrn=f"{stamp}-{n:07d}",
                given_name="Bench",
                family_name=f"Synthetic{n}",
                birth_date=dt.date(1960, 1, 1),
                **patient_fields,
            )
            for n in range(count)
        ),
        batch_size=5000,
    )
    enrolled = Enrollment.objects.bulk_create(
        (
            Enrollment(
                patient=p,
                template_id=model.template_id,
                pathway_slug=model.pathway_slug,
                status=EnrollmentStatus.ACTIVE,
                enrolled_at=model.enrolled_at,
                medications_at_enrollment=model.medications_at_enrollment,
            )
            for p in patients
        ),
        batch_size=5000,
    )
    model_schedules = list(Schedule.objects.filter(enrollment=model).order_by("pk"))
    copies = Schedule.objects.bulk_create(
        (
            Schedule(
                enrollment=enrollment,
                task_template_id=s.task_template_id,
                status=s.status,
                anchor_at=s.anchor_at,
                next_due_at=s.next_due_at,
                occurrences_made=s.occurrences_made,
                finished_at=s.finished_at,
            )
            for enrollment in enrolled
            for s in model_schedules
        ),
        batch_size=5000,
    )
    schedule_of = {
        (copy.enrollment_id, model_schedules[i % len(model_schedules)].pk): copy.pk for i, copy in enumerate(copies)
    }
    open_tasks = list(Task.objects.filter(enrollment=model, status__in=OPEN_TASK_STATUSES).order_by("pk"))
    Task.objects.bulk_create(
        (
            Task(
                enrollment=enrollment,
                template_id=t.template_id,
                schedule_id=schedule_of[(enrollment.pk, t.schedule_id)] if t.schedule_id else None,
                occurrence=t.occurrence,
                title=t.title,
                prong=t.prong,
                role=t.role,
                priority=t.priority,
                available_at=t.available_at,
                due_at=t.due_at,
                blocked_by=t.blocked_by,
                instructions=t.instructions,
            )
            for enrollment in enrolled
            for t in open_tasks
        ),
        batch_size=5000,
    )
    return [e.pk for e in enrolled]
