"""Session-bound work expires as missed (issue 14, item 3): the expiry sweep, catch-up after an outage, adherence.

The patient dialyses Mon/Wed/Fri at 13:00 in Chicago (19:00 UTC in March, before the DST change). Sodium
thiosulfate is first due on day 1, so the first dose is Wednesday 2026-03-04 19:00 UTC: due 4 h later (23:00),
window ends 6 h after the session start (Thursday 01:00 UTC), `expires_after_hours: 6` in the pathway.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from pathways.choices import OPEN_TASK_STATUSES, TaskEventKind, TaskStatus
from pathways.fhir.resources import as_json, task_resource
from pathways.models import Task, TaskEvent
from pathways.selectors.adherence import adherence_by, adherence_window
from pathways.services.sweeps import tasks_escalate_overdue, tasks_expire_missed
from pathways.services.tasks import task_transition
from tests.factories import PatientFactory
from tests.scheduling.conftest import MONDAY, sweep_at, tasks_of

STS = "sodium-thiosulfate"
WEDNESDAY_SESSION = dt.datetime(2026, 3, 4, 19, 0, tzinfo=dt.UTC)
WINDOW_END = WEDNESDAY_SESSION + dt.timedelta(hours=6)
MICRO = dt.timedelta(microseconds=1)


@pytest.fixture
def patient(site):
    return PatientFactory(site=site, dialysis_days=[0, 2, 4], dialysis_session_time=dt.time(13, 0))


def expire_at(at: dt.datetime):
    with time_machine.travel(at, tick=False):
        return tasks_expire_missed(now=timezone.now())


def test_a_missed_sts_session_closes_as_missed_at_the_end_of_its_window(enroll, patient) -> None:
    enrollment = enroll(patient)
    sweep_at(WEDNESDAY_SESSION - dt.timedelta(hours=12))
    [dose] = tasks_of(enrollment, STS)
    assert (dose.available_at, dose.due_at, dose.expires_at) == (
        WEDNESDAY_SESSION,
        WEDNESDAY_SESSION + dt.timedelta(hours=4),
        WINDOW_END,
    )
    # Past due but inside the window: overdue work, escalated like any other.
    assert expire_at(WINDOW_END - MICRO).details["missed"] == 0
    with time_machine.travel(WINDOW_END - MICRO, tick=False):
        assert tasks_escalate_overdue(now=timezone.now()).details["level_1"] >= 1
    dose.refresh_from_db()
    assert (dose.status, dose.escalation_level) == (TaskStatus.REQUESTED, 1)

    # The end of the window is included: at exactly expires_at the dose is missed.
    report = expire_at(WINDOW_END)
    dose.refresh_from_db()
    assert report.details["missed"] >= 1
    assert dose.status == TaskStatus.MISSED and dose.version == 3  # created 1, escalated 2, missed 3
    event = TaskEvent.objects.filter(task=dose).latest("pk")
    assert (event.kind, event.from_status, event.to_status, event.actor) == (
        TaskEventKind.TRANSITIONED,
        TaskStatus.REQUESTED,
        TaskStatus.MISSED,
        None,
    )
    assert event.at == WINDOW_END and event.data["status_reason"] == "missed" and "session window" in event.reason

    # Safe to re-run: nothing left to close, nothing changes.
    assert expire_at(WINDOW_END + dt.timedelta(minutes=1)).details["missed"] == 0
    dose.refresh_from_db()
    assert dose.version == 3
    # Missed is terminal: it is no longer overdue work to escalate.
    with time_machine.travel(WINDOW_END + dt.timedelta(days=2), tick=False):
        tasks_escalate_overdue(now=timezone.now())
    dose.refresh_from_db()
    assert dose.escalation_level == 1


def test_a_dose_given_in_its_window_or_a_held_one_is_not_missed(enroll, patient) -> None:
    enrollment = enroll(patient)
    sweep_at(WEDNESDAY_SESSION - dt.timedelta(hours=12))
    [dose] = tasks_of(enrollment, STS)
    given_at = WEDNESDAY_SESSION + dt.timedelta(hours=5)  # late (past due) but before the patient left
    for status in (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED):
        task_transition(task_id=dose.pk, to_status=status, actor=None, expected_version=None, now=given_at)
    # The Friday session's dose, held by the team (a safety hold is a decision, not a miss).
    friday = WEDNESDAY_SESSION + dt.timedelta(days=2)
    sweep_at(friday - dt.timedelta(hours=12))
    [_, friday_dose] = tasks_of(enrollment, STS)
    task_transition(
        task_id=friday_dose.pk, to_status=TaskStatus.ON_HOLD, actor=None, expected_version=None, reason="BP 84/50"
    )
    expire_at(friday + dt.timedelta(days=1))
    dose.refresh_from_db()
    friday_dose.refresh_from_db()
    assert (dose.status, friday_dose.status) == (TaskStatus.COMPLETED, TaskStatus.ON_HOLD)


def test_a_three_day_outage_produces_missed_doses_not_overdue_ones(enroll, patient, auditor) -> None:
    enrollment = enroll(patient)
    sweep_at(MONDAY)  # the scheduler ran at enrolment (Monday 15:00 UTC), then stopped for three days
    assert tasks_of(enrollment, STS) == []
    back = MONDAY + dt.timedelta(days=3, hours=6)  # Thursday 21:00 UTC; the horizon reaches Friday's session
    with time_machine.travel(back, tick=False):
        call_command("run_scheduler", "--as-of", back.isoformat(), stdout=open("/dev/null", "w"))  # noqa: SIM115
    doses = tasks_of(enrollment, STS)
    # Wednesday's session (19:00 UTC) ended during the outage: recorded as missed, not issued late. Friday's
    # session falls inside the horizon and is ordinary open work.
    assert [(d.available_at, d.status) for d in doses] == [
        (WEDNESDAY_SESSION, TaskStatus.MISSED),
        (WEDNESDAY_SESSION + dt.timedelta(days=2), TaskStatus.REQUESTED),
    ]
    pain = tasks_of(enrollment, "pain-score-dialysis")
    # Monday's and Wednesday's session pain scores were missed too (Monday's was made before the outage and closed
    # by the expiry sweep, Wednesday's recorded missed by the catch-up); none is overdue and open.
    assert [p.status for p in pain if p.available_at < back] == [TaskStatus.MISSED, TaskStatus.MISSED]
    session_work = Task.objects.filter(enrollment=enrollment, template__code__in=[STS, "pain-score-dialysis"])
    assert not session_work.filter(status__in=OPEN_TASK_STATUSES, due_at__lt=back).exists()
    assert not session_work.filter(escalation_level__gt=0).exists()
    [created, missed] = TaskEvent.objects.filter(task=doses[0]).order_by("pk")
    assert (created.kind, missed.to_status, missed.at) == (TaskEventKind.CREATED, TaskStatus.MISSED, back)
    assert "scheduler was not running" in missed.reason
    # Work that is not session-bound (the daily pain score) is still caught up as overdue work, as before.
    assert any(t.status == TaskStatus.REQUESTED and t.due_at < back for t in tasks_of(enrollment, "pain-score"))

    # Adherence counts the missed dose: STS doses given / scheduled / missed = 0 / 1 / 1 (Friday's is not yet due).
    window = adherence_window(start=MONDAY, end=back, now=back)
    [calcium] = [
        r for r in adherence_by(user=auditor, group_by="prong", window=window) if r["group"] == "calcium_reduction"
    ]
    assert (calcium["sts_doses_given"], calcium["sts_doses_scheduled"], calcium["sts_doses_missed"]) == (0, 1, 1)
    assert calcium["missed"] >= 1 and calcium["overdue_open"] >= 0

    # FHIR sees a failed Task with the reason "missed"; searching status=failed finds it.
    resource = as_json(task_resource(doses[0], now=back))
    assert resource["status"] == "failed"
    assert resource["statusReason"]["coding"][0]["code"] == "missed"


def test_catch_up_is_safe_to_repeat(enroll, patient) -> None:
    enrollment = enroll(patient)
    back = MONDAY + dt.timedelta(days=3)
    first = sweep_at(back)
    before = list(Task.objects.filter(enrollment=enrollment).values_list("pk", "status", "version"))
    second = sweep_at(back)
    assert first.details["missed"] == 3  # Monday and Wednesday pain scores, Wednesday's dose
    assert (second.created, second.details["missed"]) == (0, 0)
    assert list(Task.objects.filter(enrollment=enrollment).values_list("pk", "status", "version")) == before


@pytest.mark.celery
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_closes_ended_sessions_as_missed_once(pathway, site, coordinator) -> None:
    from celery.contrib.testing.worker import start_worker

    from carepath.celery import app
    from pathways.services.enrollment import enrollment_apply
    from pathways.services.sweeps import schedules_materialize_due
    from pathways.tasks import sweep_expire
    from tests.scheduling.test_concurrency_and_worker import _wait_for

    # Real time (the worker runs in this process's clock): enrolled three days ago, the scheduler made the next
    # two days' work then, and no one gave the first doses.
    enrolled_at = timezone.now() - dt.timedelta(days=3)
    patient = PatientFactory(site=site, dialysis_days=[0, 1, 2, 3, 4, 5, 6], dialysis_session_time=dt.time(13, 0))
    enrollment = enrollment_apply(
        patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, coordinator=coordinator, now=enrolled_at
    )
    schedules_materialize_due(now=enrolled_at, horizon_hours=48)
    ended = Task.objects.filter(enrollment=enrollment, template__code=STS, expires_at__lte=timezone.now())
    ids = list(ended.values_list("pk", flat=True))
    assert ids and all(t.status == TaskStatus.REQUESTED for t in ended)

    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            sweep_expire.delay()
            sweep_expire.delay()  # a second tick changes nothing
            assert _wait_for(lambda: Task.objects.filter(pk__in=ids, status=TaskStatus.MISSED).count() == len(ids))
    finally:
        broker.flushdb()
    missed_events = TaskEvent.objects.filter(task_id__in=ids, to_status=TaskStatus.MISSED)
    assert missed_events.count() == len(ids)  # each closed exactly once
    assert set(Task.objects.filter(pk__in=ids).values_list("version", flat=True)) == {2}


@pytest.mark.postgres
def test_a_batch_of_missed_sessions_is_written_in_one_update_with_each_rows_version_and_event(enroll, site) -> None:
    """task_changes_record writes tasks that change the same fields in one UPDATE … FROM unnest (the catch-up after
    an outage closed them one statement each): every row still gets its version + 1, its new status, a fresh
    updated_at and its 'transitioned' event."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pathways.services.tasks import tasks_close_missed

    for _ in range(3):
        enroll(PatientFactory(site=site, dialysis_days=[0, 2, 4], dialysis_session_time=dt.time(13, 0)))
    sweep_at(MONDAY)
    session = list(
        Task.objects.filter(template__code="pain-score-dialysis", status=TaskStatus.REQUESTED).order_by("pk")
    )
    assert len(session) >= 3
    before = {t.pk: (t.version, t.updated_at) for t in session}
    closed_at = MONDAY + dt.timedelta(days=1)
    with CaptureQueriesContext(connection) as queries, time_machine.travel(closed_at, tick=False):
        closed = tasks_close_missed(tasks=session, now=closed_at, reason="synthetic outage")
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "pathways_task"')]
    assert len(updates) == 1 and "unnest" in updates[0]
    assert {t.pk for t in closed} == set(before)
    for task in Task.objects.filter(pk__in=before):
        assert (task.status, task.version) == (TaskStatus.MISSED, before[task.pk][0] + 1)
        assert task.updated_at == closed_at > before[task.pk][1]
        event = TaskEvent.objects.filter(task=task).latest("pk")
        assert (event.to_status, event.reason) == (TaskStatus.MISSED, "synthetic outage")
