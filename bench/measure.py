"""The measurements of `manage.py bench`, one function per figure (docs/benchmarks.md lists them with targets)."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from bench.data import (
    BENCH_SITES,
    SIDE_SITE,
    bench_create_due_schedules,
    bench_remove_side_data,
)
from bench.floor import floor_queue, floor_tasks
from bench.http import LoadResult, check_page, gunicorn_server, wrk_run
from pathways.choices import OPEN_TASK_STATUSES, EnrollmentStatus, Role
from pathways.models import CareTeamMember, Enrollment, Patient, Schedule, Site, Task, User
from pathways.selectors.adherence import Window, adherence_by, adherence_window
from pathways.services.enrollment import enrollment_apply
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


@dataclass
class ScaleResult:
    """Every figure measured at one scale."""

    tasks: int
    data: dict[str, Any] = field(default_factory=dict)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrollment: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] = field(default_factory=dict)
    adherence: dict[str, Any] = field(default_factory=dict)
    dashboard: dict[str, Any] = field(default_factory=dict)
    workspace: dict[str, Any] = field(default_factory=dict)
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


def data_shape() -> dict[str, Any]:
    codes = [c for c, _, _ in BENCH_SITES]
    tasks = Task.objects.filter(enrollment__patient__site__code__in=codes)
    enrollments = Enrollment.objects.filter(patient__site__code__in=codes)
    return {
        "tasks": tasks.count(),
        "open_tasks": tasks.filter(status__in=OPEN_TASK_STATUSES).count(),
        "enrollments": enrollments.count(),
        "live_enrollments": enrollments.filter(status__in=[EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD]).count(),
        "schedules": Schedule.objects.filter(enrollment__patient__site__code__in=codes).count(),
        "specialists": User.objects.filter(username__startswith="bench-")
        .exclude(username__contains="coordinator")
        .exclude(username="bench-auditor")
        .count(),
        "all_tasks_in_db": Task.objects.count(),
    }


def _token(username: str) -> str:
    token, _ = Token.objects.get_or_create(user=User.objects.get(username=username))
    return str(token.key)


def measure_pages(*, seconds: float, connections: int, workers: int, out: Callable[[str], Any]) -> dict[str, Any]:
    """Each page and its floor under wrk load, through gunicorn; the floor must return the same JSON."""
    results: dict[str, Any] = {}
    with gunicorn_server(workers=workers) as base:
        for name, (username, api, floor) in PAGES.items():
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


def measure_pages_in_process(*, repeat: int) -> dict[str, Any]:
    """Server time of each page (Django's test client) and its floor (the view called directly, as it needs no
    middleware), without HTTP or load: the --no-http path, used by the smoke test."""
    from django.test import Client, RequestFactory

    client, factory = Client(HTTP_HOST="127.0.0.1"), RequestFactory(HTTP_HOST="127.0.0.1")
    results: dict[str, Any] = {}
    for name, (username, api, floor) in PAGES.items():
        header: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Token {_token(username)}"}
        view = floor_queue if name == "queue" else floor_tasks

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


def cleanup_side_data() -> None:
    """Delete the side site's rows, then VACUUM with index cleanup: PostgreSQL 14+ skips index vacuuming when
    dead rows are few, and the deleted sweep tasks' entries in the open-task partial indexes made the next
    scale's queue page visit three times the heap blocks it needs."""
    bench_remove_side_data()
    if not connection.in_atomic_block:
        with connection.cursor() as cursor:
            for table in ("pathways_task", "pathways_taskevent", "pathways_schedule", "pathways_notification"):
                cursor.execute(f"VACUUM (INDEX_CLEANUP ON, ANALYZE) {table}")


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
