"""The patient changes, the plan follows (issue 14): re-planning a live enrollment after an edit to the patient.

Chicago site; the patient dialyses Mon/Wed/Fri at 13:00 local and is enrolled Monday 2 March 2026, 09:00 local.
Clocks in Chicago go forward on Sunday 8 March, so the weeks after the change also cross daylight saving.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from pathways.choices import (
    OPEN_TASK_STATUSES,
    DialysisModality,
    EnrollmentEventKind,
    MedicationChangeKind,
    ScheduleStatus,
    TaskStatus,
)
from pathways.errors import InvalidInput, NotPermitted
from pathways.models import Enrollment, EnrollmentEvent, Patient, Task, TaskEvent
from pathways.services.enrollment import enrollment_hold, enrollment_resume
from pathways.services.medications import medication_change_record
from pathways.services.patients import PatientUpdateResult, patient_update
from tests.factories import PatientFactory
from tests.scheduling.conftest import MONDAY, schedule_of, sweep_at, sweep_every, tasks_of

CHICAGO = ZoneInfo("America/Chicago")
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
# Tuesday 3 March 14:00 Chicago: the Wednesday 13:00 dose is already in the queue (24 h horizon).
CHANGED_AT = dt.datetime(2026, 3, 3, 20, 0, tzinfo=dt.UTC)
MON_WED_FRI, TUE_THU_SAT = [0, 2, 4], [1, 3, 5]


@pytest.fixture
def patient(site: Any) -> Patient:
    return PatientFactory(site=site, dialysis_days=MON_WED_FRI, dialysis_session_time=dt.time(13, 0))


def local(moment: dt.datetime) -> tuple[str, str]:
    at = moment.astimezone(CHICAGO)
    return at.strftime("%a"), at.strftime("%H:%M")


def edit(patient: Patient, coordinator: Any, at: dt.datetime = CHANGED_AT, **changes: Any) -> PatientUpdateResult:
    with time_machine.travel(at, tick=False):
        return patient_update(patient_id=patient.pk, actor=coordinator, changes=changes, now=at)


def events(enrollment: Enrollment, kind: str) -> list[EnrollmentEvent]:
    return list(EnrollmentEvent.objects.filter(enrollment=enrollment, kind=kind).order_by("pk"))


def test_a_switch_from_mon_wed_fri_to_tue_thu_sat_moves_sodium_thiosulfate_to_the_next_new_session(
    enroll: Any, patient: Patient, coordinator: Any
) -> None:
    enrollment = enroll(patient)
    sweep_at(CHANGED_AT)
    [wednesday] = tasks_of(enrollment, "sodium-thiosulfate")
    assert local(wednesday.available_at) == ("Wed", "13:00")

    result = edit(patient, coordinator, dialysis_days=TUE_THU_SAT)

    # The queued Wednesday dose is cancelled with the reason; the next dose is Thursday's session, 13:00 local.
    wednesday.refresh_from_db()
    assert wednesday.status == TaskStatus.CANCELLED
    cancel = TaskEvent.objects.get(task=wednesday, to_status=TaskStatus.CANCELLED)
    assert cancel.reason == "re-planned from the next session: dialysis days Mon, Wed, Fri -> Tue, Thu, Sat"
    schedule = schedule_of(enrollment, "sodium-thiosulfate")
    assert schedule.next_due_at == dt.datetime(2026, 3, 5, 19, 0, tzinfo=dt.UTC)
    assert local(schedule.next_due_at) == ("Thu", "13:00")
    [outcome] = result.replanned
    assert outcome.replanned == {
        "pain-score-dialysis": "2026-03-05T19:00:00+00:00",
        "sodium-thiosulfate": "2026-03-05T19:00:00+00:00",
    }
    assert (outcome.started, outcome.ended) == ([], [])
    replanned = events(enrollment, EnrollmentEventKind.SCHEDULE_REPLANNED)
    assert {e.data["template"] for e in replanned} == {"sodium-thiosulfate", "pain-score-dialysis"}
    assert all("Mon, Wed, Fri -> Tue, Thu, Sat" in e.reason and e.actor == coordinator for e in replanned)

    # Two weeks of sweeps, across the daylight-saving change: every dose on Tue/Thu/Sat at 13:00 local time.
    for _ in sweep_every(CHANGED_AT, CHANGED_AT + 14 * DAY, 6 * HOUR):
        pass
    doses = [t for t in tasks_of(enrollment, "sodium-thiosulfate") if t.status != TaskStatus.CANCELLED]
    assert len(doses) == 6  # Thu 5, Sat 7, Tue 10, Thu 12, Sat 14, Tue 17 (the last sweep's 24 h horizon)
    assert {local(t.available_at) for t in doses} == {("Tue", "13:00"), ("Thu", "13:00"), ("Sat", "13:00")}
    open_session_work = Task.objects.filter(
        enrollment=enrollment,
        template__code__in=["sodium-thiosulfate", "pain-score-dialysis"],
        status__in=OPEN_TASK_STATUSES,
    )
    assert {local(t.available_at)[0] for t in open_session_work} <= {"Tue", "Thu", "Sat"}
    # Work that does not follow the sessions kept its calendar.
    assert schedule_of(enrollment, "pain-score").status == ScheduleStatus.ACTIVE
    assert not events(enrollment, EnrollmentEventKind.TEMPLATE_ENDED)


def test_a_new_session_time_moves_the_next_session_work_to_that_time(
    enroll: Any, patient: Patient, coordinator: Any
) -> None:
    enrollment = enroll(patient)
    sweep_at(CHANGED_AT)
    edit(patient, coordinator, dialysis_session_time=dt.time(7, 30))
    schedule = schedule_of(enrollment, "sodium-thiosulfate")
    assert local(schedule.next_due_at) == ("Wed", "07:30")
    sweep_at(CHANGED_AT + 2 * DAY)
    live = [t for t in tasks_of(enrollment, "sodium-thiosulfate") if t.status != TaskStatus.CANCELLED]
    assert [local(t.available_at) for t in live] == [("Wed", "07:30"), ("Fri", "07:30")]


def test_a_switch_from_haemodialysis_to_peritoneal_dialysis_ends_sodium_thiosulfate_with_a_reason(
    enroll: Any, patient: Patient, coordinator: Any
) -> None:
    enrollment = enroll(patient)
    sweep_at(CHANGED_AT)
    [wednesday] = tasks_of(enrollment, "sodium-thiosulfate")

    result = edit(patient, coordinator, dialysis_modality=DialysisModality.PERITONEAL, dialysis_days=[])

    reason = (
        "sodium-thiosulfate no longer applies: dialysis modality Hemodialysis -> Peritoneal dialysis; "
        "dialysis days Mon, Wed, Fri -> none"
    )
    wednesday.refresh_from_db()
    assert wednesday.status == TaskStatus.CANCELLED
    assert TaskEvent.objects.get(task=wednesday, to_status=TaskStatus.CANCELLED).reason == reason
    schedule = schedule_of(enrollment, "sodium-thiosulfate")
    assert (schedule.status, schedule.next_due_at) == (ScheduleStatus.FINISHED, None)
    ended = {e.data["template"]: e for e in events(enrollment, EnrollmentEventKind.TEMPLATE_ENDED)}
    assert set(ended) == {"sodium-thiosulfate", "pain-score-dialysis"}  # both apply to HD only
    assert ended["sodium-thiosulfate"].reason == reason
    assert ended["sodium-thiosulfate"].data["tasks_cancelled"] == [wednesday.pk]
    assert result.replanned[0].ended == ["pain-score-dialysis", "sodium-thiosulfate"]
    # The dialysis prescription review applies to PD too and goes on; no STS is ever made again.
    assert schedule_of(enrollment, "dialysis-prescription-review").status == ScheduleStatus.ACTIVE
    for _ in sweep_every(CHANGED_AT, CHANGED_AT + 7 * DAY, 12 * HOUR):
        pass
    assert [t.pk for t in tasks_of(enrollment, "sodium-thiosulfate")] == [wednesday.pk]


def test_back_to_haemodialysis_restarts_sodium_thiosulfate_from_the_next_session(
    enroll: Any, patient: Patient, coordinator: Any
) -> None:
    enrollment = enroll(patient)
    edit(patient, coordinator, dialysis_modality=DialysisModality.PERITONEAL, dialysis_days=[])
    later = CHANGED_AT + 3 * DAY  # Friday 6 March 14:00 Chicago
    result = edit(patient, coordinator, at=later, dialysis_modality=DialysisModality.HEMODIALYSIS, dialysis_days=[1, 3])
    assert sorted(result.replanned[0].started) == ["pain-score-dialysis", "sodium-thiosulfate"]
    schedule = schedule_of(enrollment, "sodium-thiosulfate")
    assert schedule.status == ScheduleStatus.ACTIVE
    # First due on day 1 counted from the restart: Tuesday's session (Saturday is not a dialysis day now).
    assert local(schedule.next_due_at) == ("Tue", "13:00")
    started = events(enrollment, EnrollmentEventKind.TEMPLATE_STARTED)
    assert started and all(e.reason.startswith(f"{e.data['template']} now applies: dialysis modality") for e in started)


def test_stopping_warfarin_ends_inr_monitoring_and_starting_it_starts_it(
    enroll: Any, site: Any, coordinator: Any
) -> None:
    patient = PatientFactory(site=site, risk_medications=["warfarin"])
    enrollment = enroll(patient)
    [first_inr] = tasks_of(enrollment, "inr-monitoring")  # day 0
    with time_machine.travel(CHANGED_AT, tick=False):
        medication_change_record(
            enrollment_id=enrollment.pk,
            medication="warfarin",
            drug_name="warfarin 5 mg",
            kind=MedicationChangeKind.STOPPED,
            actor=coordinator,
            now=CHANGED_AT,
        )
    first_inr.refresh_from_db()
    assert first_inr.status == TaskStatus.CANCELLED
    reason = "inr-monitoring no longer applies: Warfarin / vitamin K antagonist stopped"
    assert TaskEvent.objects.get(task=first_inr, to_status=TaskStatus.CANCELLED).reason == reason
    assert schedule_of(enrollment, "inr-monitoring").status == ScheduleStatus.FINISHED
    assert [e.reason for e in events(enrollment, EnrollmentEventKind.TEMPLATE_ENDED)] == [reason]

    # Restarted by an edit of the patient's risk medications: INR is due at once (its first-due day is 0).
    later = CHANGED_AT + 2 * DAY
    result = edit(patient, coordinator, at=later, risk_medications=["warfarin"])
    assert result.replanned[0].started == ["inr-monitoring"]
    restarted = [t for t in tasks_of(enrollment, "inr-monitoring") if t.status == TaskStatus.REQUESTED]
    assert [t.available_at for t in restarted] == [later]


def test_a_held_enrollment_is_replanned_and_stays_held(enroll: Any, patient: Patient, coordinator: Any) -> None:
    enrollment = enroll(patient)
    enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="admitted", now=MONDAY + HOUR)
    edit(patient, coordinator, dialysis_days=TUE_THU_SAT)
    schedule = schedule_of(enrollment, "sodium-thiosulfate")
    assert schedule.status == ScheduleStatus.PAUSED
    assert local(schedule.next_due_at) == ("Thu", "13:00")
    resumed_at = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)  # Wednesday
    enrollment_resume(enrollment_id=enrollment.pk, actor=coordinator, now=resumed_at)
    sweep_at(resumed_at + DAY)
    assert [local(t.available_at) for t in tasks_of(enrollment, "sodium-thiosulfate")] == [("Thu", "13:00")]


def test_other_edits_leave_the_plan_alone(enroll: Any, patient: Patient, coordinator: Any) -> None:
    enrollment = enroll(patient)
    sweep_at(CHANGED_AT)
    before = list(Task.objects.filter(enrollment=enrollment).values_list("pk", "status", "version"))
    result = edit(patient, coordinator, family_name="Renamed", dialysis_days=[4, 2, 0], current_therapies=["apixaban"])
    assert result.replanned == []
    assert list(Task.objects.filter(enrollment=enrollment).values_list("pk", "status", "version")) == before


# --- a haemodialysis patient without dialysis days is refused, never silent ----------------------------------


def test_registering_or_editing_a_haemodialysis_patient_without_dialysis_days_is_refused(
    enroll: Any, site: Any, coordinator: Any
) -> None:
    from pathways.services.patients import patient_create

    with pytest.raises(InvalidInput) as refused:
        patient_create(
            site=site,
            mrn="HD-NO-DAYS",
            given_name="Synthetic",
            family_name="Nodays",
            birth_date=dt.date(1950, 1, 1),
            dialysis_modality=DialysisModality.HEMODIALYSIS,
            dialysis_days=[],
            actor=coordinator,
        )
    assert refused.value.fields == {"dialysis_days": ["required for haemodialysis"]}
    assert not Patient.objects.filter(mrn="HD-NO-DAYS").exists()

    pd = PatientFactory(site=site, dialysis_modality=DialysisModality.PERITONEAL, dialysis_days=[])
    enrollment = enroll(pd)
    with pytest.raises(InvalidInput, match="needs dialysis days"):
        edit(pd, coordinator, dialysis_modality=DialysisModality.HEMODIALYSIS)
    pd.refresh_from_db()
    assert pd.dialysis_modality == DialysisModality.PERITONEAL
    assert not EnrollmentEvent.objects.filter(enrollment=enrollment).exclude(kind=EnrollmentEventKind.ENROLLED)


def test_only_a_coordinator_at_the_site_edits_and_nothing_changes_otherwise(
    enroll: Any, patient: Patient, dialysis_nurse: Any
) -> None:
    enroll(patient)
    with pytest.raises(NotPermitted):
        edit(patient, dialysis_nurse, dialysis_days=TUE_THU_SAT)
    with pytest.raises(InvalidInput, match="cannot be edited: site"):
        edit(patient, None, site=None)
    patient.refresh_from_db()
    assert patient.dialysis_days == MON_WED_FRI


def test_a_template_that_starts_on_a_held_enrollment_waits_for_the_resume(
    enroll: Any, patient: Patient, coordinator: Any
) -> None:
    enrollment = enroll(patient)
    enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="admitted", now=MONDAY + HOUR)
    result = edit(patient, coordinator, risk_medications=["warfarin"])
    assert result.replanned[0].started == ["inr-monitoring"]
    schedule = schedule_of(enrollment, "inr-monitoring")
    assert (schedule.status, schedule.next_due_at) == (ScheduleStatus.PAUSED, CHANGED_AT)
    assert tasks_of(enrollment, "inr-monitoring") == []  # nothing is made while the enrollment is held
    sweep_at(CHANGED_AT + HOUR)
    assert tasks_of(enrollment, "inr-monitoring") == []
    resumed_at = CHANGED_AT + 2 * HOUR
    enrollment_resume(enrollment_id=enrollment.pk, actor=coordinator, now=resumed_at)
    assert schedule_of(enrollment, "inr-monitoring").status == ScheduleStatus.ACTIVE
