"""PATCH /api/v1/patients/{id}/: a coordinator edits a patient; the live enrollment is re-planned (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from pathways.choices import AuditAction, EnrollmentEventKind, ScheduleStatus
from pathways.models import AuditEvent, EnrollmentEvent, Patient, Schedule
from tests.api.conftest import World, client_for


def _patch(world: World, body: Any, user: str = "coordinator", patient: Patient | None = None) -> Any:
    target = patient or world.patient
    return client_for(world.users[user]).patch(f"/api/v1/patients/{target.pk}/", body, format="json")


@pytest.mark.postgres
def test_patching_the_modality_ends_sodium_thiosulfate_answers_what_was_replanned_and_is_audited(world: World) -> None:
    response = _patch(world, {"dialysis_modality": "PD", "dialysis_days": [], "current_therapies": ["cinacalcet"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["dialysis_modality"], body["dialysis_days"], body["current_therapies"]) == ("PD", [], ["cinacalcet"])
    [replanned] = body["replanned"]
    assert replanned["enrollment"] == world.enrollment.pk
    assert set(replanned["ended"]) == {"sodium-thiosulfate", "pain-score-dialysis"}
    sts = Schedule.objects.get(enrollment=world.enrollment, task_template__code="sodium-thiosulfate")
    assert sts.status == ScheduleStatus.FINISHED
    ended = EnrollmentEvent.objects.get(
        enrollment=world.enrollment, kind=EnrollmentEventKind.TEMPLATE_ENDED, data__template="sodium-thiosulfate"
    )
    assert "Hemodialysis -> Peritoneal dialysis" in ended.reason
    audit = AuditEvent.objects.filter(entity_type="patient", action=AuditAction.UPDATE, patient_id=world.patient.pk)
    assert audit.exists()


@pytest.mark.postgres
def test_a_patch_changes_only_the_fields_it_names(world: World) -> None:
    before = Patient.objects.values().get(pk=world.patient.pk)
    response = _patch(world, {"family_name": "Edited"})
    assert response.status_code == 200, response.content
    assert response.json()["replanned"] == []
    after = Patient.objects.values().get(pk=world.patient.pk)
    assert after == {**before, "family_name": "Edited"}


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"site": 1}, "site"),
        ({"dialysis_days": [7]}, "dialysis_days.0"),
        ({"dialysis_days": []}, "dialysis_days"),  # haemodialysis needs its days
        ({"dialysis_modality": "home"}, "dialysis_modality"),
        ({"current_therapies": ["aspirin"]}, "current_therapies.0"),
        ({"risk_medications": "warfarin"}, "risk_medications"),
        ({"dialysis_session_time": "25:00"}, "dialysis_session_time"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_bad_patches_are_a_400_naming_the_field_and_change_nothing(world: World, body: Any, field: str) -> None:
    before = Patient.objects.values().get(pk=world.patient.pk)
    events = EnrollmentEvent.objects.count()
    response = _patch(world, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and field in error["fields"], error
    assert Patient.objects.values().get(pk=world.patient.pk) == before
    assert EnrollmentEvent.objects.count() == events


@pytest.mark.postgres
def test_a_taken_mrn_is_a_409_and_changes_nothing(world: World) -> None:
    response = _patch(world, {"mrn": world.spare_patient.mrn, "dialysis_days": [1, 3, 5]})
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"mrn": ["already registered"]}
    assert Patient.objects.get(pk=world.patient.pk).dialysis_days == [0, 2, 4]
