"""Concurrent sweeps on PostgreSQL, a real Celery worker on Redis, and a worker killed with SIGKILL mid-sweep."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core import mail
from django.db import connection, connections
from django.db.models import Count, Max
from django.utils import timezone

from bench.data import bench_create_due_schedules
from carepath.celery import app
from pathways.choices import NotificationKind, Role
from pathways.models import Notification, Schedule, Task
from pathways.services.enrollment import care_team_add
from pathways.services.sweeps import schedules_materialize_due
from tests.factories import PatientFactory

ROOT = Path(__file__).resolve().parents[2]


def _assert_each_occurrence_exactly_once(schedule_ids: list[int]) -> None:
    tasks = Task.objects.filter(schedule_id__in=schedule_ids)
    assert not tasks.values("schedule", "occurrence").annotate(n=Count("pk")).filter(n__gt=1).exists()
    made = dict(Schedule.objects.filter(pk__in=schedule_ids).values_list("pk", "occurrences_made"))
    per_schedule = {
        row["schedule"]: (row["n"], row["top"])
        for row in tasks.values("schedule").annotate(n=Count("pk"), top=Max("occurrence"))
    }
    # Nothing lost: every occurrence a schedule counts exists as a task, numbered 1..n without gaps.
    for schedule_id, count in made.items():
        assert per_schedule.get(schedule_id, (0, None)) == (count, count or None), schedule_id


def _wait_for(predicate, timeout: float = 60.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """The test Redis database, emptied before and after (no stray sweep messages between tests)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_running_concurrently_create_each_occurrence_exactly_once(pathway) -> None:
    now = timezone.now()
    schedule_ids = bench_create_due_schedules(enrollments=60, now=now)  # 300 due schedules
    barrier = threading.Barrier(2)
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            # Small batches and a 3-day horizon: both threads claim many batches, several occurrences each.
            reports.append(schedules_materialize_due(now=now, horizon_hours=72, batch_size=7))
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert all(r.rows > 0 for r in reports), "both sweeps should have claimed work (SKIP LOCKED shares it)"
    _assert_each_occurrence_exactly_once(schedule_ids)
    assert sum(r.created for r in reports) == Task.objects.filter(schedule_id__in=schedule_ids).count()
    assert schedules_materialize_due(now=now, horizon_hours=72).created == 0


@pytest.mark.celery
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_materializes_follow_ups_and_emails_escalations_once(
    pathway, site, coordinator, wound_nurse, broker
) -> None:
    from celery.contrib.testing.worker import start_worker

    from pathways.services.enrollment import enrollment_apply
    from pathways.tasks import sweep_escalate, sweep_materialize

    enrolled_at = timezone.now() - dt.timedelta(hours=7)  # the day-0 dressing change (6 h window) is overdue
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk,
        pathway_slug="calciphylaxis",
        actor=coordinator,
        coordinator=coordinator,
        now=enrolled_at,
    )
    care_team_add(
        enrollment_id=enrollment.pk, user=wound_nurse, role=Role.WOUND_NURSING, actor=coordinator, now=enrolled_at
    )
    day0 = Task.objects.filter(enrollment=enrollment).count()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        sweep_materialize.delay()
        # Tomorrow's daily pain score lies inside the 24 h horizon: the worker's sweep creates it.
        assert _wait_for(lambda: Task.objects.filter(enrollment=enrollment, template__code="pain-score").count() == 2)
        sweep_escalate.delay()
        sweep_escalate.delay()  # a second tick: must change nothing
        assert _wait_for(lambda: Notification.objects.filter(emailed_at__isnull=False).count() >= 2)
        time.sleep(1.0)  # let the duplicate tick and any stray e-mail task finish

    assert Task.objects.filter(enrollment=enrollment).count() > day0
    overdue = Notification.objects.get(user=wound_nurse, kind=NotificationKind.OVERDUE)
    escalated = Notification.objects.get(user=coordinator, kind=NotificationKind.ESCALATED)
    assert overdue.emailed_at and escalated.emailed_at
    assert sorted(m.to[0] for m in mail.outbox) == sorted([wound_nurse.email, coordinator.email])


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "celery", "-A", "carepath", "worker",
        "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.celery
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing_after_a_restart(pathway, broker, tmp_path) -> None:
    from pathways.tasks import sweep_materialize

    now = timezone.now()
    schedule_ids = bench_create_due_schedules(enrollments=600, now=now)  # 3,000 due schedules
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "carepath.test_settings",
        # The subprocess talks to this test's database and Redis database.
        "TEST_DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_REDIS_URL": settings.CELERY_BROKER_URL,
        "CAREPATH_SWEEP_BATCH_SIZE": "10",  # many small batches: there is a "mid-sweep" to kill
    }
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    log = tmp_path / "worker.log"

    def made() -> int:
        return Task.objects.filter(schedule_id__in=schedule_ids).count()

    def due_within_horizon() -> bool:
        horizon = timezone.now() + dt.timedelta(hours=settings.CAREPATH["MATERIALIZE_HORIZON_HOURS"])
        return Schedule.objects.filter(pk__in=schedule_ids, status="active", next_due_at__lte=horizon).exists()

    first = _worker(env, log)
    try:
        sweep_materialize.delay()
        assert _wait_for(lambda: made() >= 200, timeout=90), log.read_text()[-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = made()
    assert 0 < killed_at < 3000, "the kill should land mid-sweep"
    _assert_each_occurrence_exactly_once(schedule_ids)  # the in-flight batch rolled back as a whole

    second = _worker(env, log)
    try:
        # The killed message waits for Redis' visibility timeout; beat's next tick is what resumes the work.
        sweep_materialize.delay()
        assert _wait_for(lambda: not due_within_horizon(), timeout=120), log.read_text()[-3000:]
        time.sleep(0.5)
    finally:
        second.terminate()
        second.wait(30)
    connection.close()
    _assert_each_occurrence_exactly_once(schedule_ids)
    assert made() > killed_at
    assert set(Task.objects.filter(schedule_id__in=schedule_ids).values_list("schedule_id", flat=True)) == set(
        schedule_ids
    )
