"""The sodium thiosulfate safety hold, medication changes, and completing a task with its values."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import transaction

from pathways.choices import MedicationChangeKind, Priority, Role, RuleOutcome, ScheduleStatus, TaskStatus
from pathways.errors import IllegalTransition, InvalidInput, NotPermitted, StaleVersion
from pathways.models import Observation, RuleFiring, Schedule, Task
from pathways.services.enrollment import care_team_add, enrollment_hold, enrollment_resume, schedule_release_hold
from pathways.services.medications import medication_change_record
from pathways.services.observations import ObservationInput, observation_record, task_complete_with_values
from pathways.services.schedules import schedule_materialize
from pathways.services.tasks import task_claim
from tests.clinical.conftest import ENROLLED_AT, fired

# Mon 2 Mar enrolment; the first STS session is Wed 4 Mar 13:00 Chicago (19:00 UTC), then Fri 6, Mon 9, ...
TUESDAY = ENROLLED_AT + dt.timedelta(days=1)
NEXT_WEEK = ENROLLED_AT + dt.timedelta(days=10)


def _materialize_sts(enrollment, *, until: dt.datetime) -> list[Task]:
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update()
            .select_related("task_template", "enrollment__patient__site")
            .get(enrollment=enrollment, task_template__code="sodium-thiosulfate")
        )
        return schedule_materialize(schedule=schedule, until=until, now=until)


def _sts(enrollment) -> Schedule:
    return Schedule.objects.get(enrollment=enrollment, task_template__code="sodium-thiosulfate")


def test_low_blood_pressure_holds_sodium_thiosulfate_until_a_nephrologist_releases_it(
    enrollment, coordinator, nephrologist
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        # The Wednesday dose is already in the queue when the low pressure is recorded.
        (wednesday,) = _materialize_sts(enrollment, until=TUESDAY + dt.timedelta(days=1, hours=6))
        result = observation_record(enrollment_id=enrollment.pk, code="systolic_bp", value=84, unit="mmHg", actor=None)
    assert fired(result, "sts-safety-hold")
    schedule = _sts(enrollment)
    assert schedule.status == ScheduleStatus.PAUSED
    assert schedule.pause_reason == "held by rule sts-safety-hold"
    wednesday.refresh_from_db()
    assert wednesday.status == TaskStatus.ON_HOLD
    (review,) = result.tasks_created
    assert (review.role, review.priority) == (Role.NEPHROLOGY, Priority.STAT)
    assert review.due_at - review.available_at == dt.timedelta(hours=4)

    # No STS task materializes, whatever the horizon, and an enrollment hold/resume does not release it.
    assert _materialize_sts(enrollment, until=NEXT_WEEK) == []
    enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="admitted", now=TUESDAY)
    enrollment_resume(enrollment_id=enrollment.pk, actor=coordinator, now=TUESDAY + dt.timedelta(hours=1))
    assert _sts(enrollment).status == ScheduleStatus.PAUSED
    assert _materialize_sts(enrollment, until=NEXT_WEEK) == []
    assert Task.objects.filter(schedule=schedule).count() == 1

    # A nephrologist who is not on the team cannot release it; the team's nephrologist can.
    with pytest.raises(NotPermitted):
        schedule_release_hold(schedule_id=schedule.pk, actor=nephrologist, now=TUESDAY)
    care_team_add(enrollment_id=enrollment.pk, user=nephrologist, role=Role.NEPHROLOGY, actor=coordinator)
    released_at = ENROLLED_AT + dt.timedelta(days=4)  # Fri 6 Mar 15:00 UTC, before Friday's 19:00 session
    with time_machine.travel(released_at, tick=False):
        schedule_release_hold(schedule_id=schedule.pk, actor=nephrologist)
        schedule = _sts(enrollment)
        assert (schedule.status, schedule.pause_reason) == (ScheduleStatus.ACTIVE, "")
        # Wednesday's dose passed during the hold: cancelled, not given late.
        wednesday.refresh_from_db()
        assert wednesday.status == TaskStatus.CANCELLED
        (friday,) = _materialize_sts(enrollment, until=released_at + dt.timedelta(hours=6))
    assert friday.available_at == dt.datetime(2026, 3, 6, 19, 0, tzinfo=dt.UTC)
    with pytest.raises(IllegalTransition, match="not held by a safety rule"):
        schedule_release_hold(schedule_id=schedule.pk, actor=nephrologist, now=released_at)


def test_an_anion_gap_rise_of_six_from_baseline_holds_sts_once(record, enrollment) -> None:
    record(("anion_gap", 12, "mmol/L"))
    first = record(("anion_gap", 18, "mmol/L"))
    assert [f.outcome for f in first.firings] == [RuleOutcome.SCHEDULE_HELD, RuleOutcome.TASK_CREATED]
    second = record(("systolic_bp", 80, "mmHg"))
    # Held already, and the nephrology task is still open: the new reason is linked, nothing duplicated.
    assert [f.outcome for f in second.firings] == [RuleOutcome.SCHEDULE_HELD, RuleOutcome.TASK_LINKED]
    assert Task.objects.filter(enrollment=enrollment, rule_code="sts-safety-hold").count() == 1
    assert _sts(enrollment).status == ScheduleStatus.PAUSED


def test_a_patient_without_an_sts_schedule_still_gets_the_nephrology_task(pathway, coordinator, site) -> None:
    from pathways.services.enrollment import enrollment_apply
    from tests.factories import PatientFactory

    pd = PatientFactory(site=site, dialysis_modality="PD", dialysis_days=[], dialysis_session_time=None)
    enrollment = enrollment_apply(patient_id=pd.pk, pathway_slug="calciphylaxis", actor=coordinator, now=ENROLLED_AT)
    result = observation_record(
        enrollment_id=enrollment.pk, code="systolic_bp", value=85, unit="mmHg", actor=None, now=TUESDAY
    )
    assert [f.outcome for f in result.firings] == [RuleOutcome.NOTHING_TO_HOLD, RuleOutcome.TASK_CREATED]


def test_starting_a_risk_medication_asks_pharmacy_for_a_review_naming_the_drug(enrollment, coordinator) -> None:
    result = medication_change_record(
        enrollment_id=enrollment.pk,
        medication="calcium_binder",
        drug_name="calcium acetate 667 mg",
        actor=coordinator,
        now=TUESDAY,
    )
    (task,) = result.tasks_created
    assert task.template.code == "medication-review"
    assert task.role == Role.PHARMACY and task.rule_code == "risk-medication-started"
    assert "calcium acetate 667 mg" in task.title
    assert result.firings[0].medication_change == result.change
    enrollment.patient.refresh_from_db()
    assert "calcium_binder" in enrollment.patient.risk_medications
    # The risk factors captured at enrolment stay as they were.
    enrollment.refresh_from_db()
    assert "calcium_binder" not in enrollment.medications_at_enrollment

    stopped = medication_change_record(
        enrollment_id=enrollment.pk,
        medication="calcium_binder",
        drug_name="calcium acetate",
        kind=MedicationChangeKind.STOPPED,
        actor=coordinator,
        now=TUESDAY,
    )
    assert stopped.firings == []
    enrollment.patient.refresh_from_db()
    assert "calcium_binder" not in enrollment.patient.risk_medications


def test_an_unknown_medication_is_rejected_and_nothing_is_written(enrollment, coordinator) -> None:
    with pytest.raises(InvalidInput, match="unknown risk medication 'aspirin'"):
        medication_change_record(enrollment_id=enrollment.pk, medication="aspirin", drug_name="x", actor=coordinator)
    with pytest.raises(InvalidInput, match="name the drug"):
        medication_change_record(enrollment_id=enrollment.pk, medication="iron", drug_name=" ", actor=coordinator)
    assert not RuleFiring.objects.exists()


def _labs_task_for(enrollment, dialysis_nurse, coordinator) -> Task:
    care_team_add(enrollment_id=enrollment.pk, user=dialysis_nurse, role=Role.DIALYSIS_NURSING, actor=coordinator)
    task = Task.objects.get(enrollment=enrollment, template__code="pre-dialysis-labs")
    return task_claim(task_id=task.pk, actor=dialysis_nurse, expected_version=task.version, now=ENROLLED_AT)


def test_completing_a_lab_task_with_values_stores_them_and_fires_rules_together(
    enrollment, dialysis_nurse, coordinator
) -> None:
    task = _labs_task_for(enrollment, dialysis_nurse, coordinator)
    done, record = task_complete_with_values(
        task_id=task.pk,
        actor=dialysis_nurse,
        expected_version=task.version,
        values=[ObservationInput("phosphate", "2.0", "mmol/L"), ObservationInput("albumin", "3.8", "g/dL")],
        outcome="drawn pre-dialysis",
        now=TUESDAY,
    )
    assert done.status == TaskStatus.COMPLETED
    assert {o.task_id for o in record.observations} == {task.pk}
    assert fired(record, "high-phosphate-or-calcium")  # 6.194 mg/dL


def test_a_bad_value_on_completion_leaves_the_task_open_and_stores_nothing(
    enrollment, dialysis_nurse, coordinator
) -> None:
    task = _labs_task_for(enrollment, dialysis_nurse, coordinator)
    with pytest.raises(InvalidInput, match="unknown unit"):
        task_complete_with_values(
            task_id=task.pk,
            actor=dialysis_nurse,
            expected_version=task.version,
            values=[ObservationInput("phosphate", "6.1", "mg/dL"), ObservationInput("calcium", "9", "mg%")],
            now=TUESDAY,
        )
    task.refresh_from_db()
    assert task.status == TaskStatus.ACCEPTED
    assert not Observation.objects.exists() and not RuleFiring.objects.exists()
    with pytest.raises(StaleVersion):
        task_complete_with_values(
            task_id=task.pk,
            actor=dialysis_nurse,
            expected_version=task.version - 1,
            values=[ObservationInput("phosphate", "6.1", "mg/dL")],
            now=TUESDAY,
        )
    assert not Observation.objects.exists()
    # Only the assignee completes it.
    with pytest.raises(NotPermitted):
        task_complete_with_values(
            task_id=task.pk,
            actor=coordinator,
            expected_version=task.version,
            values=[ObservationInput("phosphate", "6.1", "mg/dL")],
            now=TUESDAY,
        )
    task.refresh_from_db()
    assert task.status == TaskStatus.ACCEPTED
