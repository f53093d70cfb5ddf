"""The whole pathway through the API (issue 16): enrolling a suspected case and recording its diagnosis,
precautions on the enrollment and on the tasks of the roles they name, and the subcutaneous-route flag."""

from __future__ import annotations

from pathways.choices import DiagnosisStatus, EnrollmentStatus, Role, TaskStatus
from pathways.models import AuditEvent, Enrollment, Flag, Task
from tests.api.conftest import World, client_for

PRECAUTION = "avoid-local-tissue-trauma"


def _enrol_suspected(world: World) -> dict:
    response = client_for(world.users["coordinator"]).post(
        "/api/v1/enrollments/",
        {"patient": world.spare_patient.pk, "pathway": "calciphylaxis", "diagnosis_status": "provisional"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_coordinator_enrols_a_suspected_case_and_confirms_it(world: World) -> None:
    body = _enrol_suspected(world)
    assert body["diagnosis_status"] == DiagnosisStatus.PROVISIONAL and body["diagnosis_recorded_at"] is None
    codes = set(Task.objects.filter(enrollment_id=body["id"]).values_list("template__code", flat=True))
    assert codes and all(code.startswith("workup-") for code in codes)

    response = client_for(world.users["coordinator"]).post(
        f"/api/v1/enrollments/{body['id']}/diagnosis/", {"diagnosis_status": "confirmed"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["diagnosis_status"] == DiagnosisStatus.CONFIRMED
    assert Task.objects.filter(enrollment_id=body["id"], template__code="team-huddle").exists()
    assert AuditEvent.objects.filter(path=f"/api/v1/enrollments/{body['id']}/diagnosis/", http_status=200).exists()


def test_ruling_out_through_the_api_completes_the_enrollment(world: World) -> None:
    body = _enrol_suspected(world)
    client = client_for(world.users["coordinator"])
    response = client.post(
        f"/api/v1/enrollments/{body['id']}/diagnosis/",
        {"diagnosis_status": "refuted", "reason": "warfarin necrosis"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == EnrollmentStatus.COMPLETED
    assert response.json()["end_reason"] == "calciphylaxis ruled out: warfarin necrosis"
    assert set(Task.objects.filter(enrollment_id=body["id"]).values_list("status", flat=True)) == {TaskStatus.CANCELLED}


def test_bad_diagnosis_input_is_a_clear_400_and_changes_nothing(world: World) -> None:
    body = _enrol_suspected(world)
    client = client_for(world.users["coordinator"])
    url = f"/api/v1/enrollments/{body['id']}/diagnosis/"
    for payload, field in (
        ({"diagnosis_status": "refuted"}, "reason"),
        ({"diagnosis_status": "refuted", "reason": "  "}, "reason"),
        ({"diagnosis_status": "maybe"}, "diagnosis_status"),
        ({"diagnosis_status": "provisional"}, "diagnosis_status"),
        ({}, "diagnosis_status"),
    ):
        response = client.post(url, payload, format="json")
        assert response.status_code == 400, (payload, response.content)
        assert field in response.json()["error"]["fields"], payload
    enrollment = Enrollment.objects.get(pk=body["id"])
    assert (enrollment.status, enrollment.diagnosis_status) == (EnrollmentStatus.ACTIVE, DiagnosisStatus.PROVISIONAL)
    # A confirmed enrollment has no pending diagnosis: a conflict, not a server error.
    response = client.post(
        f"/api/v1/enrollments/{world.enrollment.pk}/diagnosis/", {"diagnosis_status": "confirmed"}, format="json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "illegal_transition"
    # Enrolment accepts only provisional or confirmed.
    response = client.post(
        "/api/v1/enrollments/",
        {"patient": world.spare_patient.pk, "pathway": "calciphylaxis", "diagnosis_status": "refuted"},
        format="json",
    )
    assert response.status_code == 400 and "diagnosis_status" in response.json()["error"]["fields"]


def test_a_nurse_cannot_record_a_diagnosis(world: World) -> None:
    response = client_for(world.users["wound_nurse"]).post(
        f"/api/v1/enrollments/{world.enrollment.pk}/diagnosis/", {"diagnosis_status": "confirmed"}, format="json"
    )
    assert response.status_code == 403


def test_precautions_show_on_the_enrollment_and_on_a_wound_nursing_task_not_on_a_nephrology_task(
    world: World,
) -> None:
    coordinator = client_for(world.users["coordinator"])
    enrollment = coordinator.get(f"/api/v1/enrollments/{world.enrollment.pk}/").json()
    [precaution] = enrollment["precautions"]
    assert precaution["code"] == PRECAUTION and "no subcutaneous injections" in precaution["text"]
    assert precaution["citation"]

    nurse = client_for(world.users["wound_nurse"])
    task = nurse.get(f"/api/v1/tasks/{world.task.pk}/").json()
    assert world.task.role == Role.WOUND_NURSING
    assert [p["code"] for p in task["precautions"]] == [PRECAUTION]
    listed = nurse.get("/api/v1/tasks/", {"enrollment": world.enrollment.pk}).json()["results"]
    assert all(bool(t["precautions"]) is (t["role"] in precaution["roles"]) for t in listed)

    nephrology = Task.objects.filter(enrollment=world.enrollment, role=Role.NEPHROLOGY).first()
    assert nephrology is not None
    body = coordinator.get(f"/api/v1/tasks/{nephrology.pk}/").json()
    assert body["precautions"] == []


def test_a_subcutaneous_medication_change_raises_the_precaution_flag(world: World) -> None:
    client = client_for(world.users["coordinator"])
    response = client.post(
        "/api/v1/medication-changes/",
        {
            "enrollment": world.enrollment.pk,
            "medication": "corticosteroid",
            "drug_name": "dexamethasone 4 mg",
            "route": "subcutaneous",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["route"] == "subcutaneous"
    flag = Flag.objects.get(enrollment=world.enrollment, code=f"precaution-{PRECAUTION}")
    assert flag.severity == "alert" and PRECAUTION in flag.message
    flags = client.get("/api/v1/flags/", {"enrollment": world.enrollment.pk, "active": "true"}).json()
    assert any(f["code"] == f"precaution-{PRECAUTION}" for f in flags["results"])

    response = client.post(
        "/api/v1/medication-changes/",
        {"enrollment": world.enrollment.pk, "medication": "iron", "drug_name": "iron", "route": "under the skin"},
        format="json",
    )
    assert response.status_code == 400 and "route" in response.json()["error"]["fields"]
