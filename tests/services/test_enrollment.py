"""Enrollment: applying the pathway, applicability, lifecycle effects."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError

from pathways.choices import (
    DialysisModality,
    EnrollmentEventKind,
    EnrollmentStatus,
    ScheduleStatus,
    TaskEventKind,
    TaskStatus,
)
from pathways.errors import AlreadyEnrolled, IllegalTransition, InvalidInput, NotPermitted
from pathways.models import Enrollment, PathwayTemplate, Schedule, Task, TaskEvent, User
from pathways.services.enrollment import (
    enrollment_apply,
    enrollment_complete,
    enrollment_hold,
    enrollment_resume,
    enrollment_revoke,
)
from tests.factories import PatientFactory

# Monday 2026-03-02 15:00 UTC = 09:00 in Chicago (CST).
MONDAY = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)

DAY0_ALWAYS = {
    "team-huddle",
    "pain-score",
    "wound-assessment",
    "dressing-change",
    "infection-surveillance",
    "medication-review",
    "pre-dialysis-labs",
    "pth-alp",
    "aluminium-level",
}


def _codes(qs) -> set[str]:
    return (
        set(qs.values_list("template__code", flat=True))
        if qs.model is Task
        else set(qs.values_list("task_template__code", flat=True))
    )


@pytest.fixture
def hd_warfarin_patient(site):
    return PatientFactory(
        site=site,
        dialysis_modality=DialysisModality.HEMODIALYSIS,
        dialysis_days=[0, 2, 4],
        risk_medications=["warfarin"],
    )


@pytest.fixture
def pd_patient(site):
    return PatientFactory(
        site=site,
        dialysis_modality=DialysisModality.PERITONEAL,
        dialysis_days=[],
        dialysis_session_time=None,
        risk_medications=[],
    )


def test_hd_patient_on_warfarin_and_pd_patient_get_different_work(
    pathway: PathwayTemplate, coordinator: User, hd_warfarin_patient, pd_patient
) -> None:
    hd = enrollment_apply(
        patient_id=hd_warfarin_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    pd = enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY)

    hd_tasks = _codes(Task.objects.filter(enrollment=hd))
    pd_tasks = _codes(Task.objects.filter(enrollment=pd))
    assert hd_tasks == DAY0_ALWAYS | {"inr-monitoring"}
    assert pd_tasks == DAY0_ALWAYS

    scheduled_everyone = DAY0_ALWAYS | {
        "nutrition",
        "debridement-decision",
        "hbot-referral",
        "hbot-session",
        "response-review",
        "dialysis-prescription-review",
    }
    assert _codes(Schedule.objects.filter(enrollment=hd)) == scheduled_everyone | {
        "inr-monitoring",
        "sodium-thiosulfate",
        "pain-score-dialysis",
    }
    assert _codes(Schedule.objects.filter(enrollment=pd)) == scheduled_everyone
    # Triggered-only work is never scheduled.
    assert not Schedule.objects.filter(task_template__code="tpa-assessment").exists()

    # Nothing is assigned: every task sits in its role pool, with a 'created' event.
    tasks = Task.objects.filter(enrollment__in=[hd, pd])
    assert tasks.filter(assignee__isnull=False).count() == 0
    assert all(t.status == TaskStatus.REQUESTED for t in tasks)
    assert TaskEvent.objects.filter(task__in=tasks, kind=TaskEventKind.CREATED).count() == tasks.count()

    # Sodium thiosulfate for the Mon/Wed/Fri patient starts at the first session on or after day 1:
    # Wednesday 2026-03-04 13:00 Chicago (19:00 UTC).
    sts = Schedule.objects.get(enrollment=hd, task_template__code="sodium-thiosulfate")
    assert sts.next_due_at == dt.datetime(2026, 3, 4, 19, 0, tzinfo=dt.UTC)
    # Day-0 recurring work moved on to its next occurrence; one-offs finished.
    labs = Schedule.objects.get(enrollment=hd, task_template__code="pre-dialysis-labs")
    # Weekly on local wall-clock time: 09:00 CST on Mar 2 -> 09:00 CDT on Mar 9 (DST began Mar 8) = 14:00 UTC.
    assert (labs.occurrences_made, labs.next_due_at) == (1, dt.datetime(2026, 3, 9, 14, 0, tzinfo=dt.UTC))
    assert Schedule.objects.get(enrollment=hd, task_template__code="aluminium-level").status == ScheduleStatus.FINISHED

    event = hd.events.get(kind=EnrollmentEventKind.ENROLLED)
    assert event.data["version"] == pathway.version
    assert "sodium-thiosulfate" in event.data["applied"]
    assert "sodium-thiosulfate" in pd.events.get(kind=EnrollmentEventKind.ENROLLED).data["not_applicable"]


def test_applying_twice_is_a_clear_error_and_the_database_forbids_a_second_live_enrollment(
    pathway, coordinator, pd_patient
) -> None:
    first = enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    with pytest.raises(AlreadyEnrolled, match="already has a live calciphylaxis enrollment"):
        enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    assert Enrollment.objects.filter(patient=pd_patient).count() == 1
    # PostgreSQL names the constraint; SQLite names its columns.
    live = r"unique_live_per_patient_pathway|pathways_enrollment\.patient_id, pathways_enrollment\.pathway_slug"
    with pytest.raises(IntegrityError, match=live):
        Enrollment.objects.create(
            patient=pd_patient,
            template=pathway,
            pathway_slug="calciphylaxis",
            enrolled_at=first.enrolled_at,
            status=EnrollmentStatus.ON_HOLD,
        )


def test_an_ended_enrollment_allows_a_new_one(pathway, coordinator, pd_patient) -> None:
    first = enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    enrollment_complete(enrollment_id=first.pk, actor=coordinator, reason="healed")
    second = enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    assert second.pk != first.pk


def test_unknown_pathway_and_non_coordinators_are_refused(pathway, wound_nurse, coordinator, pd_patient) -> None:
    with pytest.raises(InvalidInput, match="no active pathway 'nope'"):
        enrollment_apply(patient_id=pd_patient.pk, pathway_slug="nope", actor=coordinator)
    with pytest.raises(NotPermitted):
        enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=wound_nurse)
    assert not Enrollment.objects.exists()


def test_the_named_coordinator_is_checked_unless_it_is_the_enrolling_coordinator(
    pathway, coordinator, wound_nurse, admin_user, pd_patient
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Someone else named (here by an admin, who needs no site): a coordinator at the patient's site, or a 400.
    with pytest.raises(InvalidInput, match="the coordinator must be a coordinator"):
        enrollment_apply(
            patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=admin_user, coordinator=wound_nurse
        )
    with pytest.raises(InvalidInput, match="the coordinator must be a coordinator"):
        enrollment_apply(
            patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=admin_user, coordinator=admin_user
        )
    assert not Enrollment.objects.exists()
    # A coordinator naming themself was just found a coordinator at the site: one site check, not two.
    with CaptureQueriesContext(connection) as queries:
        enrollment = enrollment_apply(
            patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, coordinator=coordinator
        )
    assert enrollment.coordinator_id == coordinator.pk
    assert sum('"pathways_user_sites"' in q["sql"] for q in queries.captured_queries) == 1


def test_hold_pauses_schedules_and_resume_continues_from_now_recording_missed(
    pathway, coordinator, hd_warfarin_patient
) -> None:
    enrollment = enrollment_apply(
        patient_id=hd_warfarin_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    day0_tasks = Task.objects.filter(enrollment=enrollment).count()
    with time_machine.travel(MONDAY + dt.timedelta(hours=1), tick=False):
        enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="admitted to ICU")
    assert not Schedule.objects.filter(enrollment=enrollment, status=ScheduleStatus.ACTIVE).exists()
    with pytest.raises(IllegalTransition, match="from on-hold to on-hold"):
        enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="again")

    # Resume 15 days later (Tuesday 2026-03-17, 16:00 UTC = 11:00 CDT after the DST change).
    resumed_at = MONDAY + dt.timedelta(days=15, hours=1)
    enrollment_resume(enrollment_id=enrollment.pk, actor=coordinator, now=resumed_at)
    sts = Schedule.objects.get(enrollment=enrollment, task_template__code="sodium-thiosulfate")
    # Missed Mon/Wed/Fri sessions: Mar 4, 6, 9, 11, 13, 16 -> 6 recorded, next is Wed Mar 18 13:00 CDT.
    assert sts.status == ScheduleStatus.ACTIVE
    assert sts.skipped_occurrences == 6
    assert sts.next_due_at == dt.datetime(2026, 3, 18, 18, 0, tzinfo=dt.UTC)
    labs = Schedule.objects.get(enrollment=enrollment, task_template__code="pre-dialysis-labs")
    assert labs.skipped_occurrences == 2 and labs.next_due_at > resumed_at
    # A deferred one-off missed during the hold is due now rather than lost.
    hbot = Schedule.objects.get(enrollment=enrollment, task_template__code="hbot-referral")
    assert hbot.next_due_at == resumed_at
    event = enrollment.events.get(kind=EnrollmentEventKind.RESUMED)
    assert event.data["missed_occurrences"]["sodium-thiosulfate"] == 6
    # Missed occurrences are recorded, not backfilled as tasks.
    assert Task.objects.filter(enrollment=enrollment).count() == day0_tasks


@pytest.mark.parametrize("end", ["complete", "revoke"])
def test_ending_an_enrollment_cancels_open_tasks_with_the_reason_and_finishes_schedules(
    pathway, coordinator, pd_patient, end
) -> None:
    enrollment = enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    open_before = Task.objects.filter(enrollment=enrollment).count()
    assert open_before > 0
    service = enrollment_complete if end == "complete" else enrollment_revoke
    service(enrollment_id=enrollment.pk, actor=coordinator, reason="transferred to another centre")

    enrollment.refresh_from_db()
    assert enrollment.status == (EnrollmentStatus.COMPLETED if end == "complete" else EnrollmentStatus.REVOKED)
    assert set(Task.objects.filter(enrollment=enrollment).values_list("status", flat=True)) == {TaskStatus.CANCELLED}
    reasons = set(
        TaskEvent.objects.filter(task__enrollment=enrollment, to_status=TaskStatus.CANCELLED).values_list(
            "reason", flat=True
        )
    )
    assert len(reasons) == 1 and "transferred to another centre" in reasons.pop()
    assert set(Schedule.objects.filter(enrollment=enrollment).values_list("status", flat=True)) == {
        ScheduleStatus.FINISHED
    }
    assert Schedule.objects.filter(enrollment=enrollment, next_due_at__isnull=False).count() == 0
    assert enrollment.events.filter(kind=f"{end}d").exists()


def test_revoke_needs_a_reason_and_changes_nothing_without_one(pathway, coordinator, pd_patient) -> None:
    enrollment = enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    with pytest.raises(InvalidInput, match="reason is required"):
        enrollment_revoke(enrollment_id=enrollment.pk, actor=coordinator, reason="  ")
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert not Task.objects.filter(enrollment=enrollment, status=TaskStatus.CANCELLED).exists()


def test_the_preview_shows_a_one_off_missed_during_a_hold_at_the_resume_time(
    pathway, coordinator, hd_warfarin_patient
) -> None:
    from pathways.selectors.schedule import enrollment_upcoming_occurrences

    enrollment = enrollment_apply(
        patient_id=hd_warfarin_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY
    )
    enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="admitted", now=MONDAY)
    resumed_at = MONDAY + dt.timedelta(days=10)
    enrollment_resume(enrollment_id=enrollment.pk, actor=coordinator, now=resumed_at)
    upcoming = enrollment_upcoming_occurrences(enrollment=enrollment, days=2, now=resumed_at)
    hbot = [item for item in upcoming if item.template == "hbot-referral"]
    assert [(item.available_at, item.task_id) for item in hbot] == [(resumed_at, None)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_enrollment_of_the_same_patient_waits_for_the_first_and_is_refused(
    pathway, coordinator, pd_patient
) -> None:
    """Two enrollments of one patient at once: the second waits for the first to commit (the patient's row lock;
    the unique constraint behind it), then is refused, and nothing of it is left (enrollment_apply inserts
    without savepoints, so a failure ends its whole transaction)."""
    import threading
    import time

    from django.db import connection, transaction

    first_holds = threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
                first_holds.set()
                time.sleep(0.5)  # the second enrollment starts meanwhile
        finally:
            first_holds.set()
            connection.close()

    def second() -> None:
        first_holds.wait(10)
        started = time.monotonic()
        try:
            enrollment_apply(patient_id=pd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
            outcome["second"] = "enrolled"
        except AlreadyEnrolled as exc:
            outcome["second"] = exc
        finally:
            outcome["waited"] = time.monotonic() - started
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert isinstance(outcome["second"], AlreadyEnrolled), outcome
    assert float(outcome["waited"]) >= 0.3  # it waited on the first one's lock rather than racing it
    assert Enrollment.objects.filter(patient=pd_patient).count() == 1
    assert Schedule.objects.filter(enrollment__patient=pd_patient).count() > 0


def test_day0_work_of_a_session_bound_template_expires_with_its_session(
    pathway: PathwayTemplate, coordinator: User, hd_warfarin_patient
) -> None:
    """Day-0 work is planned before its schedules are written (schedules_start_many): an occurrence of a
    session-bound template (`expires_after_hours`) made at enrollment still gets the end of its window, as the
    sweep's occurrences do. Enrolled as Monday's 13:00 Chicago session starts (19:00 UTC), the pain score at
    that session is day-0 work, due 4 h later and missed 6 h after the start."""
    session = dt.datetime(2026, 3, 2, 19, 0, tzinfo=dt.UTC)
    enrollment = enrollment_apply(
        patient_id=hd_warfarin_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=session
    )
    [pain] = Task.objects.filter(enrollment=enrollment, template__code="pain-score-dialysis")
    schedule = Schedule.objects.get(enrollment=enrollment, task_template__code="pain-score-dialysis")
    assert (pain.schedule_id, pain.occurrence) == (schedule.pk, 1)
    assert (pain.available_at, pain.due_at, pain.expires_at) == (
        session,
        session + dt.timedelta(hours=4),
        session + dt.timedelta(hours=6),
    )
