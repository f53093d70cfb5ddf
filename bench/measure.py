"""The measurements of `manage.py bench`, one function per figure (docs/benchmarks.md lists them with targets)."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.data import (
    BENCH_SITES,
    SIDE_SITE,
    Shape,
    bench_create_due_schedules,
    bench_create_enrollment_copies,
    bench_remove_side_data,
)
from bench.floor import floor_queue, floor_tasks
from bench.http import LoadResult, check_page, gunicorn_server, wrk_run
from bench.plans import explain, rows_read
from pathways.choices import OPEN_TASK_STATUSES, EnrollmentStatus, Role
from pathways.models import CareTeamMember, Enrollment, PathwayTemplate, Patient, Schedule, Site, Task, User
from pathways.selectors.adherence import Window, adherence_by, adherence_window
from pathways.services.api_tokens import api_token_issue
from pathways.services.content import pathways_load
from pathways.services.enrollment import enrollment_apply
from pathways.services.migration import enrollments_migrate
from pathways.services.sweeps import schedules_materialize_due, tasks_escalate_overdue, tasks_remind_due_soon

# The pages under load: a wound nurse's queue, and a coordinator's "overdue wound care" task list.
QUEUE_USER = "bench-1-wound_nursing-0"
TASKS_USER = "bench-1-coordinator-0"
PAGES = {
    "queue": (QUEUE_USER, "/api/v1/queue/", "/bench-floor/queue/"),
    "tasks": (
        TASKS_USER,
        "/api/v1/tasks/?overdue=true&prong=wound_care",
        "/bench-floor/tasks/?overdue=true&prong=wound_care",
    ),
}
# The open-heavy shape's pages (issue 15): a wound nurse's queue, a nephrologist's pool and assigned work (each on
# OPEN_TEAMS_PER_SPECIALIST care teams at every scale), and a coordinator's filtered list (the whole site: a user
# who sees more as the network grows).
OPEN_PAGES = {
    "queue": ("benchopen-1-wound_nursing-0", "/api/v1/queue/", "/bench-floor/queue/"),
    "pool": (
        "benchopen-1-nephrology-0",
        "/api/v1/tasks/?pool=true&role=nephrology",
        "/bench-floor/tasks/?pool=true&role=nephrology",
    ),
    "assigned": ("benchopen-1-nephrology-0", "/api/v1/tasks/?assignee=me", "/bench-floor/tasks/?assignee=me"),
    "tasks": (
        "benchopen-1-coordinator-0",
        "/api/v1/tasks/?overdue=true&prong=wound_care",
        "/bench-floor/tasks/?overdue=true&prong=wound_care",
    ),
}
CLAIM_USER = "benchopen-1-nephrology-0"


@dataclass
class ScaleResult:
    """Every figure measured at one scale."""

    tasks: int
    data: dict[str, Any] = field(default_factory=dict)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrollment: dict[str, Any] = field(default_factory=dict)
    migration: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] = field(default_factory=dict)
    adherence: dict[str, Any] = field(default_factory=dict)
    dashboard: dict[str, Any] = field(default_factory=dict)
    workspace: dict[str, Any] = field(default_factory=dict)
    fhir: dict[str, Any] = field(default_factory=dict)
    plans: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    photos: dict[str, Any] = field(default_factory=dict)


def _median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> tuple[float, float, float]:
    """(median, min, max) in milliseconds after warm-up runs (connection, plan cache, buffers)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), max(times)


def settle(seconds: float = 5.0) -> None:
    """Let the fill's aftermath pass before measuring: write its WAL out now (a checkpoint during the page loads
    would be measured instead of the pages), then give autovacuum a moment."""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")  # needs superuser or pg_checkpoint; skipped otherwise
    except DatabaseError:
        pass
    if not connection.in_atomic_block:
        time.sleep(seconds)


def data_shape(shape: Shape | None = None) -> dict[str, Any]:
    codes = shape.site_codes if shape is not None else [c for c, _, _ in BENCH_SITES]
    prefix = shape.user_prefix if shape is not None else "bench-"
    tasks = Task.objects.filter(enrollment__patient__site__code__in=codes)
    enrollments = Enrollment.objects.filter(patient__site__code__in=codes)
    return {
        "tasks": tasks.count(),
        "open_tasks": tasks.filter(status__in=OPEN_TASK_STATUSES).count(),
        "enrollments": enrollments.count(),
        "live_enrollments": enrollments.filter(status__in=[EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD]).count(),
        "schedules": Schedule.objects.filter(enrollment__patient__site__code__in=codes).count(),
        "specialists": User.objects.filter(username__startswith=prefix)
        .exclude(username__contains="coordinator")
        .exclude(username=f"{prefix}auditor")
        .count(),
        "all_tasks_in_db": Task.objects.count(),
    }


def _token(username: str) -> str:
    return api_token_issue(user=User.objects.get(username=username), name="bench")[1]


def measure_pages(
    *,
    seconds: float,
    connections: int,
    workers: int,
    out: Callable[[str], Any],
    pages: dict[str, tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    """Each page and its floor under wrk load, through gunicorn; the floor must return the same JSON."""
    results: dict[str, Any] = {}
    with gunicorn_server(workers=workers) as base:
        for name, (username, api, floor) in (pages or PAGES).items():
            token = _token(username)
            api_body = check_page(base + api, token)
            floor_body = check_page(base + floor, token)
            same = _same_results(api_body, floor_body)
            if not same:
                out(f"  WARNING: {name}: the floor's JSON differs from the API's")
            # Rounds alternate API and floor, and each figure is the median over the rounds: a slow spell of the
            # shared machine then hits both sides instead of skewing the ratio.
            rounds: dict[str, list[LoadResult]] = {"api": [], "floor": []}
            for path in (api, floor):
                wrk_run(url=base + path, token=token, seconds=min(2, seconds), connections=connections)  # warm-up
            for _ in range(ROUNDS):
                for label, path in (("api", api), ("floor", floor)):
                    rounds[label].append(
                        wrk_run(url=base + path, token=token, seconds=seconds, connections=connections)
                    )
            runs = {label: _median_result(results) for label, results in rounds.items()}
            for label, r in runs.items():
                out(
                    f"  {name:5s} {label:5s}: p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  {r.rps:7.1f} req/s  "
                    f"(medians of {ROUNDS} rounds; {r.requests} requests, {r.errors} errors, {r.non2xx} non-2xx)"
                )
            count = json.loads(api_body)["count"]
            results[name] = {
                "api": runs["api"],
                "floor": runs["floor"],
                "same_json": same,
                "count": count,
                "ratio_p50": runs["api"].p50_ms / runs["floor"].p50_ms if runs["floor"].p50_ms else None,
                "ratio_rps": runs["floor"].rps / runs["api"].rps if runs["api"].rps else None,
            }
    return results


ROUNDS = 3


def _median_result(results: list[LoadResult]) -> LoadResult:
    """Per-figure medians of several wrk runs; requests and failures are totals."""
    return LoadResult(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p90_ms=statistics.median(r.p90_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        errors=sum(r.errors for r in results),
        non2xx=sum(r.non2xx for r in results),
        rps_override=statistics.median(r.rps for r in results),
    )


def _same_results(api_body: bytes, floor_body: bytes) -> bool:
    a, b = json.loads(api_body), json.loads(floor_body)
    return bool(a["count"] == b["count"] and a["results"] == b["results"])


def measure_pages_in_process(*, repeat: int, pages: dict[str, tuple[str, str, str]] | None = None) -> dict[str, Any]:
    """Server time of each page (Django's test client) and its floor (the view called directly, as it needs no
    middleware), without HTTP or load: the --no-http path, used by the smoke test."""
    from django.test import Client, RequestFactory

    client, factory = Client(HTTP_HOST="127.0.0.1"), RequestFactory(HTTP_HOST="127.0.0.1")
    results: dict[str, Any] = {}
    for name, (username, api, floor) in (pages or PAGES).items():
        header: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Token {_token(username)}"}
        view = floor_queue if floor.startswith("/bench-floor/queue/") else floor_tasks

        def get_api(path: str = api, header: dict[str, Any] = header) -> bytes:
            response = client.get(path, **header)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
            return bytes(response.content)

        def get_floor(path: str = floor, header: dict[str, Any] = header, view: Any = view) -> bytes:
            response = view(factory.get(path, **header))
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
            return bytes(response.content)

        results[name] = {"same_json": _same_results(get_api(), get_floor())}
        for label, get in (("api", get_api), ("floor", get_floor)):
            statements: list[str] = []

            def count(
                execute: Any, sql: str, params: Any, many: bool, context: Any, seen: list[str] = statements
            ) -> Any:
                seen.append(sql)
                return execute(sql, params, many, context)

            # A wrapper, not CaptureQueriesContext: the test client's request_started signal resets that log.
            with connection.execute_wrapper(count):
                get()
            median, _, _ = _median_ms(get, repeat)
            results[name][label] = {"median_ms": median, "queries": len(statements)}
    return results


def _side_coordinator() -> User:
    site = Site.objects.get(code=SIDE_SITE)
    user, created = User.objects.get_or_create(
        username="bench-side-coordinator", defaults={"roles": [Role.COORDINATOR], "password": "!bench-no-login"}
    )
    if created:
        user.sites.add(site)
    return user


def measure_enrollment(*, repeat: int) -> dict[str, Any]:
    """enrollment_apply for one patient: latency, and queries for two patients to whom different numbers of the
    pathway's templates apply (a fixed count means no per-template query)."""
    site = Site.objects.get(code=SIDE_SITE)
    coordinator = _side_coordinator()
    stamp = int(time.time() * 1000)
    shapes: dict[str, dict[str, Any]] = {
        "HD + warfarin": {"dialysis_modality": "HD", "risk_medications": ["warfarin"], "dialysis_days": [0, 2, 4]},
        "PD, no warfarin": {"dialysis_modality": "PD", "risk_medications": [], "dialysis_days": []},
    }
    out: dict[str, Any] = {"shapes": {}}
    times = []
    for label, shape in shapes.items():
        for i in range(repeat + 1):
            patient = Patient.objects.create(
                site=site,
                mrn=f"E{stamp}-{label[:2]}-{i}",
                given_name="Bench",
                family_name="Enrol",
                birth_date=dt.date(1960, 1, 1),
                dialysis_session_time=dt.time(13, 0),
                **shape,
            )
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                enrollment = enrollment_apply(
                    patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, coordinator=coordinator
                )
                elapsed = (time.perf_counter() - started) * 1000
            if i == 0:
                continue  # warm-up (first use of the templates, plan cache)
            times.append(elapsed)
            applied = len(enrollment.events.get(kind="enrolled").data["applied"])
            out["shapes"][label] = {
                "queries": len(queries.captured_queries),
                "templates_applied": applied,
                "day0_tasks": Task.objects.filter(enrollment=enrollment).count(),
            }
    out["median_ms"] = statistics.median(times)
    out["p90_ms"] = statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else times[0]
    out["max_ms"] = max(times)
    return out


# The version the migration measurement moves enrollments to: the issue's example, a site moving dressing
# changes from every 48 h to every 24 h after completion (one re-planned schedule per enrollment), and a new
# template (a schedule started, its day-0 task made). `with_removal` also drops a template: its open task is
# cancelled through the transition function (eight more statements per enrollment: the task's lock, update,
# event, its schedule's lock, and two savepoints each for the two nested atomic services).
MIGRATION_CHANGES = {"dressing-change": {"kind": "after_completion", "hours": 24}}
MIGRATION_REMOVED = "pain-score"
MIGRATION_ADDED = {
    "code": "bench-wound-photograph",
    "title": "Wound photographs (bench)",
    "prong": "wound_care",
    "role": "wound_nursing",
    "first_due": {"day": 0},
    "recurrence": {"kind": "interval", "every_days": 14},
    "citation": "Proposed: synthetic benchmark content.",
}


def _next_version_document(*, with_removal: bool) -> dict[str, Any]:
    document = yaml.safe_load((Path(settings.CAREPATH["CONTENT_DIR"]) / "calciphylaxis.yaml").read_text())
    templates = [t for t in document["task_templates"] if not (with_removal and t["code"] == MIGRATION_REMOVED)]
    for template in templates:
        if template["code"] in MIGRATION_CHANGES:
            template["recurrence"] = MIGRATION_CHANGES[template["code"]]
    document["task_templates"] = [*templates, MIGRATION_ADDED]
    return document


def measure_migration(*, enrollments: int, with_removal: bool = False) -> dict[str, Any]:
    """Move `enrollments` active side-site enrollments (copies of one real HD patient's enrollment: its
    schedules and open day-0 tasks) to a new version of the pathway with `enrollments_migrate`, as
    `manage.py migrate_enrollments` does (batches of 100). Reports enrollments/s and the statements per
    enrollment beyond each batch's fixed ones, from runs over 10 and over 20 enrollments (a whole number, the
    same for both, means constant). Afterwards the side rows and the
    new version are removed and the previous version is active again."""
    # Only the copies are moved: the enrollment and sweep measurements' side rows go first.
    bench_remove_side_data()
    old = PathwayTemplate.objects.get(slug="calciphylaxis", status="active")
    coordinator = _side_coordinator()
    site = Site.objects.get(code=SIDE_SITE)
    patient = Patient.objects.create(
        site=site,
        mrn=f"MIG{int(time.time() * 1000)}",
        given_name="Bench",
        family_name="Migrate",
        birth_date=dt.date(1960, 1, 1),
        dialysis_modality="HD",
        dialysis_days=[0, 2, 4],
        dialysis_session_time=dt.time(13, 0),
    )
    model = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    samples = (10, 20)
    bench_create_enrollment_copies(model=model, count=enrollments + sum(samples) - 1)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "calciphylaxis.yaml"
        path.write_text(yaml.safe_dump(_next_version_document(with_removal=with_removal), sort_keys=False))
        [loaded] = pathways_load(paths=[path])
    new = PathwayTemplate.objects.get(slug="calciphylaxis", version=loaded.version)
    result: dict[str, Any] = {"from_version": old.version, "to_version": new.version, "with_removal": with_removal}
    try:
        counts = []
        for sample in samples:
            with CaptureQueriesContext(connection) as queries:
                run = enrollments_migrate(
                    slug="calciphylaxis", to_version=new.version, actor=None, site_code=SIDE_SITE, limit=sample
                )
            counts.append((len(queries.captured_queries), run.migrated))
        (q_small, n_small), (q_big, n_big) = counts
        per = (q_big - q_small) / (n_big - n_small)
        result["queries_per_enrollment"] = per
        result["queries_constant"] = per == int(per) and q_small - n_small * per == q_big - n_big * per
        started = time.perf_counter()
        run = enrollments_migrate(slug="calciphylaxis", to_version=new.version, actor=None, site_code=SIDE_SITE)
        seconds = time.perf_counter() - started
        result.update(enrollments=run.migrated, failed=len(run.failed), seconds=seconds, rate=run.migrated / seconds)
    finally:
        bench_remove_side_data()
        new.delete()
        PathwayTemplate.objects.filter(pk=old.pk).update(status="active")
    return result


def measure_sweeps(*, occurrences: int, repeat: int) -> dict[str, Any]:
    """Empty sweeps over the whole table, then the materializer on `occurrences` due occurrences."""
    now = timezone.now()
    result: dict[str, Any] = {}
    for name, run in (
        ("materialize", lambda: schedules_materialize_due(now=now)),
        ("escalate", lambda: tasks_escalate_overdue(now=now)),
        ("remind", lambda: tasks_remind_due_soon(now=now)),
    ):
        run()  # catches up whatever the generator left due (reminders, escalations), warms the connection
        median, _, high = _median_ms(run, repeat, warmup=0)
        result[f"empty_{name}_ms"] = median
        result[f"empty_{name}_max_ms"] = high
    if occurrences:
        per = 5
        bench_create_due_schedules(enrollments=-(-occurrences // per), now=now)
        report = schedules_materialize_due(now=now, horizon_hours=1)
        result.update(
            occurrences=report.created,
            seconds=report.seconds,
            rate=report.created / report.seconds if report.seconds else 0.0,
            batches=report.batches,
        )
    return result


def measure_adherence(*, repeat: int) -> dict[str, Any]:
    """Adherence by prong and by role for the auditor (all three sites): the default 30-day window and a window
    that covers every task in the table."""
    auditor = User.objects.get(username="bench-auditor")
    now = timezone.now()
    oldest = Task.objects.order_by("due_at").values_list("due_at", flat=True).first() or now
    windows = {
        "30d": adherence_window(now=now),
        # Built directly: the API caps a window at three years, and the history here can be longer.
        "all": Window(start=oldest - dt.timedelta(days=1), end=now + dt.timedelta(days=30), as_of=now),
    }
    result: dict[str, Any] = {}
    for label, window in windows.items():
        for group_by in ("prong", "role"):
            holder: dict[str, Any] = {}

            def run(group_by: str = group_by, window: Window = window, holder: dict[str, Any] = holder) -> None:
                holder["rows"] = adherence_by(user=auditor, group_by=group_by, window=window)

            median, _, _ = _median_ms(run, repeat)
            result[f"{group_by}_{label}_ms"] = median
            result[f"tasks_{label}"] = sum(r["due"] + r["cancelled"] for r in holder["rows"])
    return result


def measure_dashboard(*, repeat: int) -> dict[str, Any]:
    """Server time of the dashboard's adherence overview for the auditor (all three sites), default window:
    the whole request in process (middleware, audit row, both reports, the weekly trends, SVG rendering)."""
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(username="bench-auditor"))
    status: list[int] = []

    def run() -> None:
        status.append(client.get("/dashboard/").status_code)

    median, low, high = _median_ms(run, repeat)
    if set(status) != {200}:
        raise RuntimeError(f"the dashboard answered {sorted(set(status))}, not 200")
    return {"overview_ms": median, "overview_min_ms": low, "overview_max_ms": high}


def bench_patient_for(username: str) -> Enrollment:
    """The enrollment whose patient page the bench opens: a live one on the user's care team with the fullest
    history the generator gave (most tasks, then the oldest), as a clinician on a real ward would open it."""
    enrollment = (
        Enrollment.objects.filter(
            status=EnrollmentStatus.ACTIVE,
            pk__in=CareTeamMember.objects.filter(user__username=username, period_end__isnull=True).values(
                "enrollment_id"
            ),
        )
        .annotate(tasks_count=Count("tasks"))
        .order_by("-tasks_count", "enrolled_at", "pk")
        .first()
    )
    if enrollment is None:
        raise RuntimeError(f"{username} is on no live enrollment's care team")
    return enrollment


def measure_workspace(*, repeat: int) -> dict[str, Any]:
    """Server time and statements of the clinicians' workspace pages in process (Django's test client, no HTTP,
    no load; the whole request: session, middleware, audit row, template): the specialist's My work (`/work/`,
    the user of the API queue page) and the patient page (`/patients/<id>/`) of bench_patient_for's enrollment.
    And the API queue page again, for the same user, in the same rounds, so the My work ÷ queue ratio compares
    figures from the same moments. Times in ms (the median over ROUNDS rounds of each round's median of
    `repeat` / ROUNDS requests after a warm-up), statements per request as CaptureQueriesContext counts them."""
    from django.test import Client

    user = User.objects.get(username=QUEUE_USER)
    enrollment = bench_patient_for(QUEUE_USER)
    session = Client(HTTP_HOST="127.0.0.1")
    session.force_login(user)
    token = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {_token(QUEUE_USER)}")
    pages = {
        "my_work": (session, "/work/"),
        "patient": (session, f"/patients/{enrollment.patient_id}/"),
        "queue_api": (token, PAGES["queue"][1]),
    }
    result: dict[str, Any] = {
        "patient_tasks": Task.objects.filter(enrollment=enrollment).count(),
        "patient_events": enrollment.events.count(),
    }
    gets: dict[str, Callable[[], None]] = {}
    for name, (client, path) in pages.items():

        def get(client: Any = client, path: str = path) -> None:
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")

        get()  # warm: what the process keeps (a version's precautions, kept pages) is read on first use
        with CaptureQueriesContext(connection) as queries:
            get()
        # Counted now: captured_queries slices connection.queries when read, and the next request empties it.
        result[name] = {"queries": len(queries.captured_queries)}
        gets[name] = get
    # Rounds alternate the pages and each figure is the median of the rounds' medians, as under wrk: a slow spell
    # of the shared machine then hits every page instead of skewing the ratio.
    rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in pages}
    for _ in range(ROUNDS):
        for name, fetch in gets.items():
            rounds[name].append(_median_ms(fetch, max(1, repeat // ROUNDS)))
    for name, figures in rounds.items():
        result[name].update(
            median_ms=statistics.median(m for m, _, _ in figures),
            min_ms=min(low for _, low, _ in figures),
            max_ms=max(high for _, _, high in figures),
        )
    result["ratio"] = (
        result["my_work"]["median_ms"] / result["queue_api"]["median_ms"] if result["queue_api"]["median_ms"] else None
    )
    return result


FHIR_JSON = "application/fhir+json"
# A 10-analyte lab panel (LOINC code, value, UCUM unit): calcium and phosphate in mmol/L whose product
# (77 mg²/dL²) crosses the Ca x P rule, so the measured ingestion includes rules that raise a flag and work.
FHIR_PANEL = (
    ("2000-8", 2.6, "mmol/L"),
    ("14879-1", 2.4, "mmol/L"),
    ("1751-7", 31, "g/L"),
    ("2731-8", 450, "pg/mL"),
    ("6768-6", 140, "U/L"),
    ("1963-8", 22, "mmol/L"),
    ("33037-3", 14, "mmol/L"),
    ("6690-2", 8.1, "10*3/uL"),
    ("1988-5", 12, "mg/L"),
    ("6301-6", 2.4, "{INR}"),
)


def fhir_panel_bundle(*, patient_id: int, effective: dt.datetime) -> dict[str, Any]:
    """A FHIR R4 transaction Bundle of FHIR_PANEL's ten Observations for one patient at one time."""
    entries = []
    for code, value, unit in FHIR_PANEL:
        resource = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": effective.isoformat(),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        }
        entries.append({"resource": resource, "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def measure_fhir(*, repeat: int) -> dict[str, Any]:
    """Issue 17's figures, server time in process (Django's test client, the whole request: authentication,
    scoping, audit row, rendering):

    - `task_search` / `task_list`: one patient's open tasks through FHIR (`/fhir/R4/Task?patient=…&status=…`)
      and through the REST list (`/api/v1/tasks/?patient=…&status=…`), for the queue page's wound nurse and
      bench_patient_for's enrollment, alternating in the same rounds; both must return the same tasks;
    - `bundle`: a 10-Observation transaction Bundle (FHIR_PANEL) posted by a coordinator for a patient enrolled
      at the side site, rules included (the Ca x P rule fires on every panel); each post has a new effective time,
      so nothing is deduplicated away.

    Returns {"task_search": {...}, "task_list": {...}, "ratio": float, "tasks": int, "bundle": {...}}; times in
    ms as in measure_workspace, "queries" the statements of one request. Raises RuntimeError when a page does not
    answer 200 or the two searches disagree."""
    from django.test import Client

    enrollment = bench_patient_for(QUEUE_USER)
    patient_id = enrollment.patient_id
    reader = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {_token(QUEUE_USER)}")
    fhir_status = ",".join(OPEN_TASK_STATUSES)
    rest_status = "&".join(f"status={s}" for s in OPEN_TASK_STATUSES)
    paths = {
        "task_search": f"/fhir/R4/Task?patient=Patient/{patient_id}&status={fhir_status}&_count=50",
        "task_list": f"/api/v1/tasks/?patient={patient_id}&{rest_status}&limit=50",
    }
    bodies: dict[str, Any] = {}
    result: dict[str, Any] = {}
    gets: dict[str, Callable[[], None]] = {}
    for name, path in paths.items():

        def get(path: str = path, name: str = name) -> None:
            response = reader.get(path, HTTP_ACCEPT=FHIR_JSON if name == "task_search" else "application/json")
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
            bodies[name] = json.loads(response.content)

        with CaptureQueriesContext(connection) as queries:
            get()
        result[name] = {"queries": len(queries.captured_queries)}
        gets[name] = get
    fhir_ids = sorted(int(e["resource"]["id"]) for e in bodies["task_search"].get("entry", []))
    rest_ids = sorted(int(t["id"]) for t in bodies["task_list"]["results"])
    if fhir_ids != rest_ids:
        raise RuntimeError(f"the FHIR Task search and the REST list disagree: {fhir_ids} vs {rest_ids}")
    result["tasks"] = len(rest_ids)
    rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in paths}
    for _ in range(ROUNDS):
        for name, fetch in gets.items():
            rounds[name].append(_median_ms(fetch, max(1, repeat // ROUNDS)))
    for name, figures in rounds.items():
        result[name].update(
            median_ms=statistics.median(m for m, _, _ in figures),
            min_ms=min(low for _, low, _ in figures),
            max_ms=max(high for _, _, high in figures),
        )
    result["ratio"] = (
        result["task_search"]["median_ms"] / result["task_list"]["median_ms"]
        if result["task_list"]["median_ms"]
        else None
    )
    result["bundle"] = _measure_fhir_bundle(repeat=repeat)
    return result


def _measure_fhir_bundle(*, repeat: int) -> dict[str, Any]:
    from django.test import Client

    coordinator = _side_coordinator()
    patient = Patient.objects.create(
        site=Site.objects.get(code=SIDE_SITE),
        mrn=f"F{int(time.time() * 1000)}",
        given_name="Bench",
        family_name="Fhir",
        birth_date=dt.date(1960, 1, 1),
        dialysis_modality="HD",
        dialysis_days=[0, 2, 4],
        dialysis_session_time=dt.time(13, 0),
        risk_medications=["warfarin"],
    )
    enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, coordinator=coordinator)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {_token(coordinator.username)}")
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    posted = [0]
    statements: list[int] = []

    def post() -> None:
        posted[0] += 1
        body = fhir_panel_bundle(patient_id=patient.pk, effective=start + dt.timedelta(seconds=posted[0]))
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/fhir/R4/", json.dumps(body), content_type=FHIR_JSON, HTTP_ACCEPT=FHIR_JSON)
        statements.append(len(queries.captured_queries))
        entries = json.loads(response.content).get("entry", []) if response.status_code == 200 else []
        if response.status_code != 200 or [e["response"]["status"][:3] for e in entries] != ["201"] * len(FHIR_PANEL):
            raise RuntimeError(
                f"the FHIR transaction Bundle answered {response.status_code}: {response.content[:300]!r}"
            )

    median, low, high = _median_ms(post, repeat)
    return {
        "median_ms": median,
        "min_ms": low,
        "max_ms": high,
        "observations": len(FHIR_PANEL),
        "queries": statements[-1],
        "posts": posted[0],
        # Measured values stored (derived ones, Ca x P and corrected calcium, come on top).
        "stored": patient.enrollments.get().observations.filter(inputs_key="").count(),
    }


def cleanup_side_data() -> None:
    """Delete the side site's rows, then VACUUM with index cleanup: PostgreSQL 14+ skips index vacuuming when
    dead rows are few, and the deleted sweep tasks' entries in the open-task partial indexes made the next
    scale's queue page visit three times the heap blocks it needs."""
    bench_remove_side_data()
    if not connection.in_atomic_block:
        with connection.cursor() as cursor:
            for table in ("pathways_task", "pathways_taskevent", "pathways_schedule", "pathways_notification"):
                cursor.execute(f"VACUUM (INDEX_CLEANUP ON, ANALYZE) {table}")


def _page_queryset(username: str, api: str) -> tuple[Any, Any]:
    """The queryset an API list page runs (the same selector and filterset as the view), and its user."""
    from types import SimpleNamespace
    from urllib.parse import urlsplit

    from django.http import QueryDict

    from pathways.api.filters import TaskFilter
    from pathways.selectors.tasks import task_list_for_query, task_queue_for_user

    user = User.objects.get(username=username)
    parts = urlsplit(api)
    filters = QueryDict(parts.query)
    if parts.path.endswith("/queue/"):
        base = task_queue_for_user(user=user)
    else:
        base = task_list_for_query(user=user, query=filters)
    if not set(filters):
        return base, user
    filterset = TaskFilter(filters, queryset=base, request=SimpleNamespace(user=user))  # type: ignore[arg-type]
    if not filterset.is_valid():
        raise RuntimeError(f"{api}: {filterset.errors}")
    return filterset.qs, user


def measure_plans(pages: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    """For each page: the rows PostgreSQL read to answer its page and its count (EXPLAIN ANALYZE, all tables and
    the task table alone), the rows the user can see there, and the open tasks in the whole database: the
    evidence that a page's cost follows the user's own work rather than the network's."""
    result: dict[str, Any] = {"open_tasks_in_db": Task.objects.filter(status__in=OPEN_TASK_STATUSES).count()}
    for name, (username, api, _) in pages.items():
        qs, _user = _page_queryset(username, api)
        page, count = explain(qs[:50]), explain(qs.values("pk"))
        result[name] = {
            "visible": qs.count(),
            "page_rows": rows_read(page),
            "page_task_rows": rows_read(page, "pathways_task"),
            "count_rows": rows_read(count),
            "count_task_rows": rows_read(count, "pathways_task"),
            "page_ms": float(page.get("Actual Total Time", 0.0)),
        }
    return result


def measure_claims(*, repeat: int, username: str = CLAIM_USER) -> dict[str, Any]:
    """Claim and unclaim through the API in process (Django's test client with the user's token: the whole
    request, middleware and audit row, no HTTP): median server time and the statements of each, over `repeat`
    pool tasks of the user's role, each claimed and given back."""
    from django.test import Client

    user = User.objects.get(username=username)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {_token(username)}")
    qs, _ = _page_queryset(username, f"/api/v1/tasks/?pool=true&role={user.roles[0]}&status=requested")
    tasks = list(qs.values_list("pk", "version")[: repeat + 1])
    if len(tasks) < 2:
        return {}  # a tiny data set (the smoke test) may hold none: the table shows a dash
    times: dict[str, list[float]] = {"claim": [], "unclaim": []}
    statements: dict[str, int] = {}
    for i, (task_id, version) in enumerate(tasks):
        for action in ("claim", "unclaim"):
            path = f"/api/v1/tasks/{task_id}/{action}/"
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.post(path, {"version": version}, content_type="application/json")
                elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:200]!r}")
            version = response.json()["version"]
            statements[action] = len(queries.captured_queries)
            if i:  # the first task warms up
                times[action].append(elapsed)
    return {
        **{f"{a}_ms": statistics.median(t) for a, t in times.items() if t},
        **{f"{a}_queries": n for a, n in statements.items()},
        "tasks": len(tasks) - 1,
    }


def phone_photo_jpeg(size: tuple[int, int] = (3264, 2448), quality: int = 92) -> bytes:
    """A synthetic 8-megapixel JPEG of about 4 MB (a gradient under noise, which JPEG cannot squeeze much), as a
    phone camera sends it; no real photograph."""
    import io

    from PIL import Image

    base = Image.linear_gradient("L").resize(size).convert("RGB")
    noise = Image.effect_noise(size, 45).convert("RGB")
    out = io.BytesIO()
    Image.blend(base, noise, 0.5).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def measure_photos(*, repeat: int, photos_on_page: int = 50) -> dict[str, Any]:
    """Wound photographs (issue 19), in process, on bench_patient_for's enrollment, the files in a scratch
    directory and the rows deleted afterwards:
    - uploading a ~4 MB phone JPEG through the API (multipart POST /api/v1/wound-photos/: type check, decode,
      EXIF orientation, re-encode, thumbnail, storage, row, audit event), median of `repeat` uploads;
    - the patient page (`/patients/<id>/`) with one photo and with `photos_on_page`: server time, statements
      (the lesion timeline renders thumbnails only, so the count must not grow with the photos)."""
    import dataclasses
    import tempfile

    from django.test import Client
    from django.test.utils import override_settings

    from pathways.models import WoundPhoto
    from pathways.services.photos import PHOTO_TASK_STATUSES, PhotoInput, wound_photo_add

    # The queue page's wound nurse and the patient page bench_patient_for opens: a generated patient (the
    # audit events these requests write name it, so it must not be side data that is deleted afterwards).
    nurse = User.objects.get(username=QUEUE_USER)
    enrollment = bench_patient_for(QUEUE_USER)
    patient = enrollment.patient
    task = (
        Task.objects.filter(enrollment=enrollment, template__code="wound-assessment", status__in=PHOTO_TASK_STATUSES)
        .order_by("-due_at")
        .first()
    )
    if task is None:
        raise RuntimeError(f"enrollment {enrollment.pk} has no wound assessment to photograph")
    jpeg = phone_photo_jpeg()
    out: dict[str, Any] = {"upload_bytes": len(jpeg)}
    with tempfile.TemporaryDirectory(prefix="carepath-bench-photos-") as scratch:
        storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": scratch}}
        from django.conf import settings

        with override_settings(STORAGES={**settings.STORAGES, "wound_photos": storage}):
            api = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {_token(nurse.username)}")

            def upload() -> None:
                import io

                handle = io.BytesIO(jpeg)
                handle.name = "phone.jpg"
                body = {"task": task.pk, "lesion": "L1 left thigh", "body_site": "left thigh", "image": handle}
                response = api.post("/api/v1/wound-photos/", body)
                if response.status_code != 201:
                    raise RuntimeError(f"the upload answered {response.status_code}: {response.content[:200]!r}")

            out["upload_median_ms"], out["upload_min_ms"], out["upload_max_ms"] = _median_ms(upload, repeat)
            session = Client(HTTP_HOST="127.0.0.1")
            session.force_login(nurse)
            path = f"/patients/{patient.pk}/"

            def page() -> None:
                if session.get(path).status_code != 200:
                    raise RuntimeError(f"{path} did not answer 200")

            def statements() -> int:
                with CaptureQueriesContext(connection) as queries:
                    page()
                return len(queries.captured_queries)

            WoundPhoto.objects.filter(enrollment=enrollment).exclude(
                pk=WoundPhoto.objects.filter(enrollment=enrollment).order_by("pk").values("pk")[:1]
            ).delete()
            page()  # warm-up
            out["page_1_photo_queries"] = statements()
            small = PhotoInput(data=phone_photo_jpeg((640, 480), 80), filename="p.jpg", lesion="L2", body_site="calf")
            for n in range(photos_on_page - 1):
                wound_photo_add(
                    task_id=task.pk,
                    photo=dataclasses.replace(small, lesion=f"L{2 + n % 4} lesion"),
                    actor=nurse,
                )
            out["photos_on_page"] = WoundPhoto.objects.filter(enrollment=enrollment).count()
            out["page_queries"] = statements()
            out["page_median_ms"], _, _ = _median_ms(page, repeat)
            WoundPhoto.objects.filter(enrollment=enrollment).delete()
    return out
