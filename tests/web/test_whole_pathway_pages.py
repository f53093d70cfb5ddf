"""The whole pathway in the workspace (issue 16): enrolling a suspected case, confirming or ruling it out from the
patient page, and the standing precaution on the patient page and on the nurses' tasks."""

from __future__ import annotations

import pytest
from django.test import Client

from pathways.choices import DiagnosisStatus, EnrollmentStatus, TaskStatus
from pathways.models import Enrollment, Task, User
from tests.web.conftest import World

pytestmark = pytest.mark.django_db

PRECAUTION_TEXT = b"no subcutaneous injections"


def client_as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _enrol_suspected(world: World) -> Enrollment:
    client = client_as(world.users["coordinator"])
    page = client.get(f"/patients/{world.spare_patient.pk}/enrol/?suspected=1")
    assert page.status_code == 200
    assert b'data-template="workup-labs"' in page.content and b'data-template="team-huddle"' not in page.content
    response = client.post(f"/patients/{world.spare_patient.pk}/enrol/", {"diagnosis_status": "provisional"})
    assert response.status_code == 302
    return Enrollment.objects.get(patient=world.spare_patient)


def test_the_enrolment_preview_shows_the_treatment_unless_asked_for_the_workup(world: World) -> None:
    page = client_as(world.users["coordinator"]).get(f"/patients/{world.spare_patient.pk}/enrol/")
    assert b'data-template="team-huddle"' in page.content and b'data-template="workup-labs"' not in page.content


def test_a_coordinator_enrols_a_suspected_case_and_confirms_it_from_the_patient_page(world: World) -> None:
    enrollment = _enrol_suspected(world)
    assert enrollment.diagnosis_status == DiagnosisStatus.PROVISIONAL
    client = client_as(world.users["coordinator"])
    page = client.get(f"/patients/{world.spare_patient.pk}/")
    assert b'id="panel-confirm"' in page.content and b'id="panel-rule-out"' in page.content
    response = client.post(f"/enrollments/{enrollment.pk}/confirm/", {"reason": ""})
    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert enrollment.diagnosis_status == DiagnosisStatus.CONFIRMED
    assert Task.objects.filter(enrollment=enrollment, template__code="team-huddle").exists()
    page = client.get(f"/patients/{world.spare_patient.pk}/")
    assert b'id="panel-confirm"' not in page.content


def test_ruling_out_from_the_patient_page_needs_a_reason_and_completes_the_enrollment(world: World) -> None:
    enrollment = _enrol_suspected(world)
    client = client_as(world.users["coordinator"])
    response = client.post(f"/enrollments/{enrollment.pk}/rule-out/", {"reason": ""})
    assert response.status_code == 400
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.ACTIVE
    response = client.post(f"/enrollments/{enrollment.pk}/rule-out/", {"reason": "vasculitis on biopsy"})
    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.COMPLETED and "vasculitis on biopsy" in enrollment.end_reason
    assert set(Task.objects.filter(enrollment=enrollment).values_list("status", flat=True)) == {TaskStatus.CANCELLED}


def test_an_auditor_cannot_record_a_diagnosis(world: World) -> None:
    enrollment = _enrol_suspected(world)
    response = client_as(world.users["auditor"]).post(f"/enrollments/{enrollment.pk}/confirm/", {"reason": ""})
    assert response.status_code == 403
    enrollment.refresh_from_db()
    assert enrollment.diagnosis_status == DiagnosisStatus.PROVISIONAL


def test_the_precaution_shows_on_the_patient_page_and_on_the_nurses_tasks_only(world: World) -> None:
    page = client_as(world.users["wound_nurse"]).get(f"/patients/{world.patient.pk}/")
    assert page.status_code == 200
    content = page.content.decode()
    assert 'id="precautions"' in content and PRECAUTION_TEXT.decode() in content
    card = content.split(f'id="task-{world.task.pk}"', 1)[1].split("</article>", 1)[0]
    assert 'data-precaution="avoid-local-tissue-trauma"' in card
    nephrology = Task.objects.filter(enrollment=world.enrollment, role="nephrology").first()
    assert nephrology is not None
    # The nurse sees only the pools of her roles; the coordinator sees every task on the page.
    content = client_as(world.users["coordinator"]).get(f"/patients/{world.patient.pk}/").content.decode()
    assert 'data-precaution="avoid-local-tissue-trauma"' in content.split(f'id="task-{world.task.pk}"', 1)[1]
    card = content.split(f'id="task-{nephrology.pk}"', 1)[1].split("</article>", 1)[0]
    assert "data-precaution" not in card
