"""Wound photographs in the workspace: the upload form, the patient page's lesion timeline (thumbnails beside
that week's BWAT-CUA score and area, a constant number of statements), and the scoped, audited file views."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pathways.choices import Role
from pathways.models import AuditEvent, Enrollment, Task, User, WoundPhoto
from pathways.services.enrollment import care_team_add, enrollment_apply
from tests.photos.conftest import jpeg_bytes, stored_files, web, weekly_assessments

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_weeks_ago(pathway: Any, coordinator: User, wound_patient: Any, wound_nurse: User) -> Enrollment:
    enrollment = enrollment_apply(
        patient_id=wound_patient.pk,
        pathway_slug="calciphylaxis",
        actor=coordinator,
        now=timezone.now() - dt.timedelta(days=20),
    )
    care_team_add(
        enrollment_id=enrollment.pk,
        user=wound_nurse,
        role=Role.WOUND_NURSING,
        actor=coordinator,
        now=enrollment.enrolled_at,
    )
    return enrollment


def test_the_patient_page_lines_up_each_lesions_weeks_with_that_weeks_score_and_area(
    three_weeks_ago: Enrollment, wound_nurse: User, auditor: User, photo_dir: Path
) -> None:
    weekly_assessments(three_weeks_ago, wound_nurse, weeks=3)

    for user in (wound_nurse, auditor):
        response = web(user).get(f"/patients/{three_weeks_ago.patient_id}/")
        assert response.status_code == 200
        html = response.content.decode()
        for lesion in ("L1 left thigh", "L2 right calf"):
            section = html.split(f'data-lesion="{lesion}"')[1].split("</section>")[0]
            assert re.findall(r'data-week="(\d+)"', section) == ["1", "2", "3"]
            assert re.findall(r'class="bwat">([^<]*)<', section) == ["30", "27", "24"]
            # length x width: 4 x 2, 3.5 x 2, 3 x 2 (cm2)
            assert re.findall(r'class="area">([^<]*)<', section) == ["8 cm²", "7 cm²", "6 cm²"]
        sources = re.findall(r'<img src="([^"]+)"', html)
        assert len(sources) == 6 and all(src.endswith("/thumbnail/") for src in sources)  # thumbnails only
        alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"', html)
        assert "Wound photograph of lesion L1 left thigh, " in alts[0]


def test_the_patient_page_runs_the_same_statements_for_6_photos_as_for_54(
    three_weeks_ago: Enrollment, wound_nurse: User, photo_dir: Path
) -> None:
    weekly_assessments(three_weeks_ago, wound_nurse, weeks=3)
    client = web(wound_nurse)
    url = f"/patients/{three_weeks_ago.patient_id}/"
    client.get(url)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    task = Task.objects.filter(enrollment=three_weeks_ago, template__code="wound-assessment").order_by("pk").first()
    assert task is not None
    for n in range(48):
        WoundPhoto.objects.create(
            **{
                f.name: getattr(WoundPhoto.objects.first(), f.name)
                for f in WoundPhoto._meta.concrete_fields
                if f.name not in ("id", "lesion")
            },
            lesion=f"L{3 + n % 4} extra",
        )
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.content.decode().count("/thumbnail/") == 54
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_the_upload_form_stores_a_photo_and_refuses_a_pdf_named_jpg(
    assessment_task: Task, wound_nurse: User, photo_dir: Path
) -> None:
    client = web(wound_nurse)
    url = f"/work/tasks/{assessment_task.pk}/photos/"
    assert client.get(url).status_code == 200
    fields = {"lesion": "L1 left thigh", "body_site": "left thigh", "length_cm": "3", "width_cm": "", "note": ""}

    pdf = io.BytesIO(b"%PDF-1.4\n%%EOF\n")
    pdf.name = "photo.jpg"
    refused = client.post(url, {**fields, "image": pdf})
    assert refused.status_code == 415
    assert "only JPEG and PNG" in refused.content.decode()
    assert WoundPhoto.objects.count() == 0 and stored_files(photo_dir) == []

    jpeg = io.BytesIO(jpeg_bytes())
    jpeg.name = "photo.jpg"
    response = client.post(url, {**fields, "image": jpeg})
    assert response.status_code == 303
    photo = WoundPhoto.objects.get()
    assert (photo.lesion, photo.taken_by_id, str(photo.length_cm)) == ("L1 left thigh", wound_nurse.pk, "3.0000")
    page = client.get(url).content.decode()
    assert f'data-photo="{photo.pk}"' in page and 'alt="Wound photograph of lesion L1 left thigh' in page


def test_the_upload_form_is_404_for_a_team_member_in_another_role(
    enrollment: Enrollment, assessment_task: Task, coordinator: User, dialysis_nurse: User, photo_dir: Path
) -> None:
    care_team_add(enrollment_id=enrollment.pk, user=dialysis_nurse, role=Role.DIALYSIS_NURSING, actor=coordinator)

    # Not in their queue scope (another role's task): the workspace answers as for any task out of scope.
    assert web(dialysis_nurse).get(f"/work/tasks/{assessment_task.pk}/photos/").status_code == 404


@pytest.mark.parametrize("variant", ["thumbnail", "image"])
def test_workspace_photo_files_are_404_out_of_scope_and_every_fetch_is_audited(
    enrollment: Enrollment,
    wound_nurse: User,
    off_team_wound_nurse: User,
    other_site_admin_free_user: User,
    photo_dir: Path,
    variant: str,
) -> None:
    from tests.photos.conftest import photo_on

    photo = photo_on(enrollment, wound_nurse)
    url = f"/photos/{photo.pk}/{variant}/"
    for outsider in (off_team_wound_nurse, other_site_admin_free_user):
        response = web(outsider).get(url)
        assert response.status_code == 404
        assert AuditEvent.objects.get(request_id=response["X-Request-ID"]).http_status == 404
    response = web(wound_nurse).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.subtype, event.entity_type, event.entity_id, event.patient_id) == (
        f"workspace wound photo {variant}",
        "woundphoto",
        str(photo.pk),
        enrollment.patient_id,
    )


def test_a_photo_is_soft_deleted_from_the_workspace_with_a_reason_and_audited(
    enrollment: Enrollment, assessment_task: Task, wound_nurse: User, off_team_wound_nurse: User, photo_dir: Path
) -> None:
    from tests.photos.conftest import photo_on

    photo = photo_on(enrollment, wound_nurse)
    url = f"/photos/{photo.pk}/delete/"
    assert web(off_team_wound_nurse).post(url, {"reason": "x"}).status_code == 404
    client = web(wound_nurse)
    assert client.post(url, {"reason": ""}).status_code == 303
    photo.refresh_from_db()
    assert photo.deleted_at is None  # no reason, no delete

    response = client.post(url, {"reason": "photographed the wrong lesion"})

    assert response.status_code == 303
    photo.refresh_from_db()
    assert photo.delete_reason == "photographed the wrong lesion" and photo.deleted_by_id == wound_nurse.pk
    event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.entity_id) == ("D", str(photo.pk))
    assert client.get(f"/photos/{photo.pk}/thumbnail/").status_code == 404
    assert f'data-photo="{photo.pk}"' not in client.get(f"/work/tasks/{assessment_task.pk}/photos/").content.decode()
