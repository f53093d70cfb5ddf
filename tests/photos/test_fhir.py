"""Wound photographs as FHIR R4 Media: linked to the Patient and the assessment's Observations, read and searched
by patient through the same scoping as the API."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.media import Media

from pathways.models import AuditEvent, Enrollment, Observation, Task, User
from pathways.services.observations import ObservationInput, task_complete_with_values
from pathways.services.photos import wound_photo_delete
from pathways.services.tasks import task_claim
from tests.fhir.conftest import Fhir
from tests.photos.conftest import photo_on

pytestmark = pytest.mark.django_db


def test_a_photo_is_media_linked_to_the_patient_and_the_assessments_observations(
    enrollment: Enrollment, assessment_task: Task, wound_nurse: User, photo_dir
) -> None:
    task_claim(task_id=assessment_task.pk, actor=wound_nurse, expected_version=None)
    task_complete_with_values(
        task_id=assessment_task.pk,
        actor=wound_nurse,
        expected_version=None,
        values=[ObservationInput("bwat_cua", "24", "score"), ObservationInput("wound_length", "3", "cm")],
    )
    photo = photo_on(enrollment, wound_nurse)

    response = Fhir(wound_nurse).get(f"Media/{photo.pk}")

    assert response.status_code == 200, response.json()
    media = Media.model_validate(response.json())
    assert media.status == "completed" and media.subject.reference == f"Patient/{enrollment.patient_id}"
    observation_ids = set(Observation.objects.filter(task=assessment_task).values_list("pk", flat=True))
    assert {ref.reference for ref in media.partOf} == {f"Observation/{pk}" for pk in observation_ids}
    assert media.content.contentType == "image/jpeg"
    assert media.content.url == f"/api/v1/wound-photos/{photo.pk}/image/"
    assert media.extension[0].valueString == "L1 left thigh"
    assert media.bodySite.text == "left thigh" and media.operator.reference == f"Practitioner/{wound_nurse.pk}"
    event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.entity_type, event.entity_id, event.patient_id) == (
        "woundphoto",
        str(photo.pk),
        enrollment.patient_id,
    )


def test_media_is_searched_by_patient_and_excludes_deleted_photos(
    enrollment: Enrollment, wound_nurse: User, coordinator: User, photo_dir
) -> None:
    kept = photo_on(enrollment, wound_nurse, lesion="L1 left thigh")
    deleted = photo_on(enrollment, wound_nurse, lesion="L2 right calf")
    wound_photo_delete(photo_id=deleted.pk, actor=coordinator, reason="duplicate")

    response = Fhir(wound_nurse).get("Media", patient=f"Patient/{enrollment.patient_id}")

    bundle = Bundle.model_validate(response.json())
    assert [entry.resource.id for entry in bundle.entry] == [str(kept.pk)]
