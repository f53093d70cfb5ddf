"""The materializer sweep: idempotent, batched, pausing with the enrollment, after-completion chains."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db.models import Count

from pathways.choices import ScheduleStatus, TaskStatus
from pathways.models import Schedule, Task, TaskEvent
from pathways.services.enrollment import enrollment_hold, enrollment_resume
from pathways.services.schedules import schedule_materialize
from pathways.services.tasks import task_transition
from tests.factories import PatientFactory
from tests.scheduling.conftest import MONDAY, schedule_of, sweep_at, tasks_of

DAY = dt.timedelta(days=1)


@pytest.fixture
def patient(site):
    return PatientFactory(site=site, dialysis_days=[0, 2, 4], dialysis_session_time=dt.time(13, 0))


def _complete(task: Task, at: dt.datetime, actor=None) -> None:
    with time_machine.travel(at, tick=False):
        task_transition(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=actor, expected_version=None, now=at)
        task_transition(task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=actor, expected_version=None, now=at)


def test_running_the_sweep_twice_creates_each_occurrence_once(enroll, patient) -> None:
    enrollment = enroll(patient)
    first = sweep_at(MONDAY + DAY)
    count = Task.objects.filter(enrollment=enrollment).count()
    second = sweep_at(MONDAY + DAY)
    assert first.created > 0 and second.created == 0
    assert Task.objects.filter(enrollment=enrollment).count() == count
    assert not Task.objects.values("schedule", "occurrence").annotate(n=Count("pk")).filter(n__gt=1).exists()
    # Every task has its 'created' event, and the schedule counts match the rows.
    assert TaskEvent.objects.filter(task__enrollment=enrollment, kind="created").count() == count
    for schedule in Schedule.objects.filter(enrollment=enrollment):
        assert schedule.tasks.count() == schedule.occurrences_made


def test_only_occurrences_inside_the_horizon_are_created(enroll, patient) -> None:
    enrollment = enroll(patient)
    report = sweep_at(MONDAY + dt.timedelta(hours=1), horizon_hours=2)
    assert report.created == 0
    sweep_at(MONDAY + dt.timedelta(hours=1), horizon_hours=24)
    [_, tuesday] = tasks_of(enrollment, "pain-score")
    assert tuesday.available_at == MONDAY + DAY
    for schedule in Schedule.objects.filter(enrollment=enrollment, status=ScheduleStatus.ACTIVE):
        assert schedule.next_due_at is None or schedule.next_due_at > MONDAY + dt.timedelta(hours=25)


def test_small_batches_cover_every_due_schedule(enroll, site, coordinator) -> None:
    enrollments = [enroll(PatientFactory(site=site), with_coordinator=False) for _ in range(3)]
    report = sweep_at(MONDAY + 2 * DAY, batch_size=2)
    assert report.batches > 3
    big = sweep_at(MONDAY + 2 * DAY)
    assert big.created == 0
    assert len({len(tasks_of(e, "pain-score")) for e in enrollments}) == 1


def test_completing_a_dressing_change_at_1410_schedules_the_next_one_48h_later(enroll, patient, wound_nurse) -> None:
    enrollment = enroll(patient)
    [first] = tasks_of(enrollment, "dressing-change")
    done_at = dt.datetime(2026, 3, 2, 20, 10, tzinfo=dt.UTC)  # 14:10 in Chicago
    assert schedule_of(enrollment, "dressing-change").next_due_at is None  # waiting for the completion
    sweep_at(done_at - dt.timedelta(minutes=5))
    assert len(tasks_of(enrollment, "dressing-change")) == 1
    _complete(first, done_at)
    assert schedule_of(enrollment, "dressing-change").next_due_at == done_at + dt.timedelta(hours=48)
    sweep_at(done_at + dt.timedelta(hours=1), horizon_hours=24)
    assert len(tasks_of(enrollment, "dressing-change")) == 1  # 48 h away: not yet in the horizon
    sweep_at(done_at + dt.timedelta(hours=30))
    second = tasks_of(enrollment, "dressing-change")[1]
    assert second.available_at == dt.datetime(2026, 3, 4, 20, 10, tzinfo=dt.UTC)  # Wednesday 14:10 Chicago
    assert second.due_at == second.available_at + dt.timedelta(hours=6)


def test_a_cancelled_dressing_change_moves_the_chain_on_from_the_cancellation(enroll, patient, coordinator) -> None:
    enrollment = enroll(patient)
    [first] = tasks_of(enrollment, "dressing-change")
    cancelled_at = MONDAY + dt.timedelta(hours=3)
    task_transition(
        task_id=first.pk,
        to_status=TaskStatus.CANCELLED,
        actor=coordinator,
        expected_version=None,
        reason="patient off the unit",
        now=cancelled_at,
    )
    assert schedule_of(enrollment, "dressing-change").next_due_at == cancelled_at + dt.timedelta(hours=48)
    sweep_at(cancelled_at + dt.timedelta(hours=47))
    assert tasks_of(enrollment, "dressing-change")[1].available_at == cancelled_at + dt.timedelta(hours=48)


def test_hold_creates_nothing_and_resume_continues_from_now_recording_what_was_skipped(
    enroll, patient, coordinator
) -> None:
    enrollment = enroll(patient)
    sweep_at(MONDAY + dt.timedelta(hours=1))
    before = Task.objects.filter(enrollment=enrollment).count()
    held_at = MONDAY + dt.timedelta(hours=2)
    enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="admitted elsewhere", now=held_at)
    for day in range(1, 5):
        assert sweep_at(MONDAY + day * DAY).created == 0
    assert Task.objects.filter(enrollment=enrollment).count() == before

    resumed_at = MONDAY + dt.timedelta(days=5, hours=1)  # Saturday 10:00 Chicago
    enrollment_resume(enrollment_id=enrollment.pk, actor=coordinator, now=resumed_at)
    pain = schedule_of(enrollment, "pain-score")
    # Daily at 09:00: Wed..Sat 09:00 were missed (Tue 09:00 was made before the hold); next is Sunday 09:00,
    # which is 14:00 UTC because daylight saving starts that morning.
    sunday_0900 = dt.datetime(2026, 3, 8, 14, 0, tzinfo=dt.UTC)
    assert pain.skipped_occurrences == 4
    assert pain.next_due_at == sunday_0900
    sweep_at(resumed_at)
    assert [t.available_at for t in tasks_of(enrollment, "pain-score")][-1] == sunday_0900


def test_an_occurrence_that_already_exists_is_skipped_not_duplicated_and_the_sweep_goes_on(enroll, patient) -> None:
    enrollment = enroll(patient)
    schedule = schedule_of(enrollment, "pain-score")
    # A stray row for occurrence 2 (as if written by a writer that ignored the schedule lock).
    Task.objects.create(
        enrollment=enrollment,
        template=schedule.task_template,
        schedule=schedule,
        occurrence=2,
        title="stray",
        prong="support",
        role="pain_palliative",
        available_at=MONDAY + DAY,
        due_at=MONDAY + DAY,
    )
    report = sweep_at(MONDAY + dt.timedelta(hours=1))
    assert report.duplicates_skipped == 1 and report.failed == []
    assert report.created > 0  # the other schedules of the batch were materialized
    schedule.refresh_from_db()
    assert schedule.occurrences_made == 2
    assert [t.occurrence for t in tasks_of(enrollment, "pain-score")] == [1, 2]


def test_a_paused_or_finished_schedule_is_not_materialized(enroll, patient) -> None:
    enrollment = enroll(patient)
    schedule = schedule_of(enrollment, "pain-score")
    schedule.status = ScheduleStatus.PAUSED
    schedule.save()
    assert schedule_materialize(schedule=schedule, until=MONDAY + 10 * DAY, now=MONDAY) == []
    sweep_at(MONDAY + 3 * DAY)
    assert len(tasks_of(enrollment, "pain-score")) == 1
