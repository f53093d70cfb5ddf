"""Each recurrence kind, materialized by the sweep as the clock moves (time-machine), in the site's local time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pathways.choices import RecurrenceKind, ScheduleStatus, TaskStatus
from pathways.services.tasks import task_transition
from tests.factories import PatientFactory, SiteFactory
from tests.scheduling.conftest import MONDAY, schedule_of, sweep_at, sweep_every, tasks_of

CHICAGO = ZoneInfo("America/Chicago")
DAY = dt.timedelta(days=1)


def local(task_time: dt.datetime, tz: ZoneInfo = CHICAGO) -> tuple[str, str]:
    moment = task_time.astimezone(tz)
    return moment.strftime("%a"), moment.strftime("%H:%M")


@pytest.fixture
def patient(site):
    return PatientFactory(site=site, dialysis_days=[0, 2, 4], dialysis_session_time=dt.time(13, 0))


def test_a_one_off_at_an_offset_is_created_within_the_horizon_once_and_finishes(enroll, patient) -> None:
    enrollment = enroll(patient)
    # hbot-referral: once, first due on day 3 (Thursday 09:00 Chicago = 15:00 UTC).
    sweep_at(MONDAY + dt.timedelta(days=1, hours=23))
    assert tasks_of(enrollment, "hbot-referral") == []
    sweep_at(MONDAY + dt.timedelta(days=2, hours=1))
    [task] = tasks_of(enrollment, "hbot-referral")
    assert task.available_at == dt.datetime(2026, 3, 5, 15, 0, tzinfo=dt.UTC)
    assert schedule_of(enrollment, "hbot-referral").status == ScheduleStatus.FINISHED
    sweep_at(MONDAY + dt.timedelta(days=10))
    assert len(tasks_of(enrollment, "hbot-referral")) == 1


def test_every_n_days_keeps_the_local_time_and_each_occurrence_is_made_once(enroll, patient) -> None:
    enrollment = enroll(patient)
    for _ in sweep_every(MONDAY, MONDAY + 4 * DAY, dt.timedelta(hours=6)):
        pass
    tasks = tasks_of(enrollment, "pain-score")  # interval, every_days 1, from day 0
    # Day 0 at enrolment, then one per day inside the 24 h horizon of the last sweep (Mar 7 09:00 included).
    assert [t.occurrence for t in tasks] == [1, 2, 3, 4, 5, 6]
    assert {local(t.available_at)[1] for t in tasks} == {"09:00"}


def test_every_n_hours_is_absolute_time_and_stops_at_its_count(enroll, patient, custom_schedule) -> None:
    enrollment = enroll(patient)
    schedule = custom_schedule(
        enrollment,
        code="every-8h",
        kind=RecurrenceKind.INTERVAL,
        first_due={"day": 0},
        recurrence={"every_hours": 8, "count": 3},
    )
    for _ in sweep_every(MONDAY, MONDAY + 3 * DAY, dt.timedelta(hours=4)):
        pass
    tasks = tasks_of(enrollment, "every-8h")
    assert [t.available_at - MONDAY for t in tasks] == [dt.timedelta(hours=h) for h in (0, 8, 16)]
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.FINISHED and schedule.next_due_at is None


def test_an_end_day_bounds_a_daily_schedule(enroll, patient, custom_schedule) -> None:
    enrollment = enroll(patient)
    custom_schedule(
        enrollment,
        code="daily-to-day-2",
        kind=RecurrenceKind.INTERVAL,
        first_due={"day": 0},
        recurrence={"every_days": 1, "until_day": 2},
    )
    for _ in sweep_every(MONDAY, MONDAY + 6 * DAY, DAY):
        pass
    assert [local(t.available_at)[0] for t in tasks_of(enrollment, "daily-to-day-2")] == ["Mon", "Tue", "Wed"]


def test_weekdays_at_a_local_time_wait_for_their_prerequisite(enroll, patient, wound_nurse) -> None:
    enrollment = enroll(patient)
    # hbot-session: MO-FR 10:00 from day 7, waits for hbot-referral to be completed.
    for _ in sweep_every(MONDAY, MONDAY + 8 * DAY, dt.timedelta(hours=12)):
        pass
    sessions = tasks_of(enrollment, "hbot-session")
    assert [local(t.available_at) for t in sessions] == [("Mon", "10:00"), ("Tue", "10:00"), ("Wed", "10:00")]
    assert all(t.blocked_by == ["hbot-referral"] for t in sessions)
    [referral] = tasks_of(enrollment, "hbot-referral")
    task_transition(task_id=referral.pk, to_status=TaskStatus.IN_PROGRESS, actor=None, expected_version=None)
    task_transition(task_id=referral.pk, to_status=TaskStatus.COMPLETED, actor=None, expected_version=None)
    for task in sessions:
        task.refresh_from_db()
        assert task.blocked_by == []
    sweep_at(MONDAY + 9 * DAY)
    assert tasks_of(enrollment, "hbot-session")[-1].blocked_by == []  # created after the referral: available


def test_a_weekday_count_bound_finishes_the_schedule(enroll, patient) -> None:
    enrollment = enroll(patient)
    for _ in sweep_every(MONDAY, MONDAY + 40 * DAY, DAY):
        pass
    assert len(tasks_of(enrollment, "hbot-session")) == 20
    assert schedule_of(enrollment, "hbot-session").status == ScheduleStatus.FINISHED
    assert len(tasks_of(enrollment, "inr-monitoring")) == 0  # not on warfarin: not applied


@pytest.mark.parametrize(
    ("start", "change"),
    [
        # US daylight saving starts Sunday 2026-03-08 and ends Sunday 2026-11-01.
        (dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 8, 8, 0, tzinfo=dt.UTC)),
        (dt.datetime(2026, 10, 26, 15, 0, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, 7, 0, tzinfo=dt.UTC)),
    ],
    ids=["march-spring-forward", "november-fall-back"],
)
def test_sodium_thiosulfate_on_mon_wed_fri_keeps_13h_chicago_across_dst_and_phoenix_stays_put(
    enroll, start, change, coordinator
) -> None:
    chicago = SiteFactory(code="chi", timezone="America/Chicago")
    phoenix = SiteFactory(code="phx", timezone="America/Phoenix")
    coordinator.sites.add(phoenix)
    chi_patient = PatientFactory(site=chicago, dialysis_days=[0, 2, 4], dialysis_session_time=dt.time(13, 0))
    phx_patient = PatientFactory(site=phoenix, dialysis_days=[0, 2, 4], dialysis_session_time=dt.time(13, 0))
    chi = enroll(chi_patient, at=start)
    phx = enroll(phx_patient, at=start)
    for _ in sweep_every(start, start + 14 * DAY, dt.timedelta(hours=6)):
        pass

    chi_tasks = tasks_of(chi, "sodium-thiosulfate")
    phx_tasks = tasks_of(phx, "sodium-thiosulfate")
    # First due on day 1 (Tuesday): Wed, Fri, Mon, Wed, Fri, Mon, Wed, Fri (+ the next inside the horizon).
    assert len(chi_tasks) >= 6
    assert {local(t.available_at) for t in chi_tasks} <= {("Mon", "13:00"), ("Wed", "13:00"), ("Fri", "13:00")}
    assert [local(t.available_at)[0] for t in chi_tasks[:3]] == ["Wed", "Fri", "Mon"]
    utc_hours = {t.available_at < change: t.available_at.astimezone(dt.UTC).hour for t in chi_tasks}
    # The UTC hour moves by one across the change (CST 19:00 UTC <-> CDT 18:00 UTC); the local hour does not.
    assert abs(utc_hours[True] - utc_hours[False]) == 1

    phoenix_tz = ZoneInfo("America/Phoenix")
    assert {local(t.available_at, phoenix_tz)[1] for t in phx_tasks} == {"13:00"}
    assert {t.available_at.astimezone(dt.UTC).hour for t in phx_tasks} == {20}
