"""Current therapies and medication changes (issue 14, item 4): rules that read what the patient takes now, and a
dose change of a risk medication that fires the medication review like a new order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pathways.choices import MedicationChangeKind, Role, Therapy
from pathways.models import Patient, Task
from pathways.services.enrollment import enrollment_apply
from pathways.services.medications import medication_change_record
from pathways.services.observations import ObservationInput, observations_record
from pathways.services.patients import patient_update
from tests.clinical.conftest import ENROLLED_AT, fired
from tests.factories import PatientFactory

PTH_TEN_TIMES = ObservationInput("pth", "650", "pg/mL")  # 10 x the 65 pg/mL default upper normal


def _enrol(site: Any, coordinator: Any, **patient: Any) -> Any:
    person = PatientFactory(site=site, **patient)
    return enrollment_apply(patient_id=person.pk, pathway_slug="calciphylaxis", actor=coordinator, now=ENROLLED_AT)


def _pth(enrollment: Any, at: dt.datetime = ENROLLED_AT + dt.timedelta(hours=2)) -> Any:
    return observations_record(enrollment_id=enrollment.pk, values=[PTH_TEN_TIMES], actor=None, effective_at=at, now=at)


@pytest.mark.parametrize(
    ("therapies", "consult"),
    [(["cinacalcet"], True), (["cinacalcet", "apixaban"], True), ([], False), (["apixaban"], False)],
)
def test_pth_above_nine_times_upper_normal_fires_the_endocrine_surgery_consult_only_despite_cinacalcet(
    pathway: Any, site: Any, coordinator: Any, therapies: list[str], consult: bool
) -> None:
    enrollment = _enrol(site, coordinator, current_therapies=therapies)
    result = _pth(enrollment)
    assert fired(result, "pth-very-high") is consult
    consults = [t for t in result.tasks_created if t.role == Role.ENDOCRINOLOGY]
    assert len(consults) == int(consult)
    if consult:
        assert "current therapy: cinacalcet" in consults[0].instructions
        assert "pth 650 pg/mL" in consults[0].instructions


def test_recording_cinacalcet_on_the_patient_makes_the_next_pth_fire(pathway: Any, site: Any, coordinator: Any) -> None:
    enrollment = _enrol(site, coordinator)
    assert not fired(_pth(enrollment), "pth-very-high")
    patient_update(
        patient_id=enrollment.patient_id,
        actor=coordinator,
        changes={"current_therapies": [Therapy.CINACALCET]},
        now=ENROLLED_AT + dt.timedelta(hours=3),
    )
    assert Patient.objects.get(pk=enrollment.patient_id).current_therapies == ["cinacalcet"]
    assert fired(_pth(enrollment, ENROLLED_AT + dt.timedelta(hours=4)), "pth-very-high")


@pytest.mark.parametrize(
    ("kind", "review"),
    [
        (MedicationChangeKind.DOSE_CHANGED, True),
        (MedicationChangeKind.STARTED, True),
        (MedicationChangeKind.STOPPED, False),
    ],
)
def test_a_dose_change_of_a_risk_medication_fires_the_medication_review_like_a_new_order(
    pathway: Any, site: Any, coordinator: Any, kind: str, review: bool
) -> None:
    enrollment = _enrol(site, coordinator, risk_medications=["vitamin_d"])
    # The day-0 medication review is done; a change asks for a new one.
    Task.objects.filter(enrollment=enrollment, template__code="medication-review").update(status="completed")
    result = medication_change_record(
        enrollment_id=enrollment.pk,
        medication="vitamin_d",
        drug_name="calcitriol 0.5 mcg",
        kind=kind,
        actor=coordinator,
        now=ENROLLED_AT + dt.timedelta(hours=5),
    )
    assert bool(result.firings) is review
    if review:
        [task] = result.tasks_created
        assert task.template.code == "medication-review"
        words = "dose change" if kind == MedicationChangeKind.DOSE_CHANGED else "new order"
        assert task.title.endswith(f"({words}: calcitriol 0.5 mcg)")
        assert f"{words}: calcitriol 0.5 mcg (vitamin_d)" in task.instructions


def test_a_dose_change_of_a_medication_not_on_the_list_puts_it_there(pathway: Any, site: Any, coordinator: Any) -> None:
    enrollment = _enrol(site, coordinator)
    result = medication_change_record(
        enrollment_id=enrollment.pk,
        medication="warfarin",
        drug_name="warfarin 3 mg",
        kind=MedicationChangeKind.DOSE_CHANGED,
        actor=coordinator,
        now=ENROLLED_AT + dt.timedelta(hours=1),
    )
    assert fired_codes(result) == {"risk-medication-started"}
    assert Patient.objects.get(pk=enrollment.patient_id).risk_medications == ["warfarin"]
    # Warfarin now applies: INR monitoring starts, with its reason.
    assert Task.objects.filter(enrollment=enrollment, template__code="inr-monitoring").count() == 1


def fired_codes(result: Any) -> set[str]:
    return {f.rule_code for f in result.firings}
