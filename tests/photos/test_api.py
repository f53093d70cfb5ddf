"""Wound photographs over the API: upload, cleaning, refusals that store nothing, scoping and the audit trail."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from pathways.choices import AuditAction, Role
from pathways.models import AuditEvent, Task, User, WoundPhoto
from pathways.services.enrollment import care_team_add
from tests.photos.conftest import api, gps_exif, jpeg_bytes, png_bytes, stored_files, upload

pytestmark = pytest.mark.django_db


def _audit(response: Any) -> AuditEvent:
    return AuditEvent.objects.get(request_id=response["X-Request-ID"])


def test_a_wound_nurse_on_the_team_uploads_a_photo_that_is_stored_re_encoded_without_exif_or_gps(
    assessment_task: Task, wound_nurse: User, photo_dir: Path
) -> None:
    sent = jpeg_bytes((800, 600), exif=gps_exif())
    assert Image.open(io.BytesIO(sent)).getexif().get_ifd(0x8825)  # the upload does carry GPS

    response = upload(api(wound_nurse), assessment_task, sent, length_cm="3.5", width_cm="2", note="dry eschar")

    assert response.status_code == 201, response.content
    body = response.json()
    photo = WoundPhoto.objects.get(pk=body["id"])
    assert (photo.lesion, photo.body_site, photo.taken_by_id) == ("L1 left thigh", "left thigh", wound_nurse.pk)
    assert (str(photo.length_cm), str(photo.width_cm), photo.note) == ("3.5000", "2.0000", "dry eschar")
    assert photo.detected_type == photo.content_type == "image/jpeg"
    assert len(stored_files(photo_dir)) == 2  # the image and its thumbnail
    stored = (photo_dir / photo.image_name).read_bytes()
    assert stored != sent  # re-encoded, not copied
    fetched = api(wound_nurse).get(f"/api/v1/wound-photos/{photo.pk}/image/")
    assert fetched.status_code == 200
    assert fetched["Content-Type"] == "image/jpeg"
    assert fetched["Cache-Control"] == "private, no-store"
    assert fetched["X-Content-Type-Options"] == "nosniff"
    image = Image.open(io.BytesIO(fetched.content))
    assert image.size == (800, 600)
    exif = image.getexif()
    assert len(exif) == 0 and not exif.get_ifd(0x8825)
    assert b"Exif" not in fetched.content[:4096] and b"SERIAL-0001" not in fetched.content
    thumbnail = api(wound_nurse).get(f"/api/v1/wound-photos/{photo.pk}/thumbnail/")
    assert thumbnail.status_code == 200
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 320


def test_the_exif_orientation_is_applied_to_the_pixels_before_it_is_dropped(
    assessment_task: Task, wound_nurse: User, photo_dir: Path
) -> None:
    # Orientation 6: the camera was turned; the upright image is 600 wide and 800 high.
    response = upload(api(wound_nurse), assessment_task, jpeg_bytes((800, 600), exif=gps_exif(orientation=6)))

    assert response.status_code == 201, response.content
    assert (response.json()["width_px"], response.json()["height_px"]) == (600, 800)


def test_a_png_is_kept_as_a_png_without_its_text_chunks(
    assessment_task: Task, wound_nurse: User, photo_dir: Path
) -> None:
    image = Image.new("RGB", (100, 80), (10, 200, 10))
    out = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    image.save(out, format="PNG", pnginfo=info)

    response = upload(api(wound_nurse), assessment_task, out.getvalue(), name="wound.png")

    assert response.status_code == 201, response.content
    photo = WoundPhoto.objects.get(pk=response.json()["id"])
    stored = (photo_dir / photo.image_name).read_bytes()
    assert photo.content_type == "image/png" and stored.startswith(b"\x89PNG")
    assert b"<script>" not in stored


def _pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.mark.parametrize(
    ("case", "make", "name", "status", "code"),
    [
        ("png named .jpg", png_bytes, "photo.jpg", 415, "unsupported_media_type"),
        ("pdf named .jpg", _pdf, "photo.jpg", 415, "unsupported_media_type"),
        ("zero bytes", lambda: b"", "photo.jpg", 400, "invalid"),
        ("truncated jpeg", lambda: jpeg_bytes()[:300], "photo.jpg", 400, "invalid"),
        (
            "heic",
            lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
            "photo.heic",
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_refused_uploads_are_4xx_and_store_nothing(
    assessment_task: Task, wound_nurse: User, photo_dir: Path, case: str, make: Any, name: str, status: int, code: str
) -> None:
    response = upload(api(wound_nurse), assessment_task, make(), name=name)

    assert response.status_code == status, (case, response.content)
    assert response.json()["error"]["code"] == code
    assert WoundPhoto.objects.count() == 0
    assert stored_files(photo_dir) == []


def test_an_image_over_the_pixel_limit_is_a_413_and_stores_nothing(
    assessment_task: Task, wound_nurse: User, photo_dir: Path, settings: Any
) -> None:
    settings.CAREPATH = {**settings.CAREPATH, "PHOTO_MAX_PIXELS": 100 * 100}

    response = upload(api(wound_nurse), assessment_task, jpeg_bytes((101, 100)))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "pixels" in response.json()["error"]["message"]
    assert WoundPhoto.objects.count() == 0 and stored_files(photo_dir) == []


def test_a_file_over_the_size_limit_is_a_413_and_stores_nothing(
    assessment_task: Task, wound_nurse: User, photo_dir: Path, settings: Any
) -> None:
    data = jpeg_bytes((400, 300))
    settings.CAREPATH = {**settings.CAREPATH, "PHOTO_MAX_BYTES": len(data) - 1}

    response = upload(api(wound_nurse), assessment_task, data)

    assert response.status_code == 413
    assert WoundPhoto.objects.count() == 0 and stored_files(photo_dir) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lesion": ""}, "lesion"),
        ({"body_site": "   "}, "body_site"),
        ({"length_cm": "-1"}, "length_cm"),
        ({"width_cm": "abc"}, "width_cm"),
        ({"taken_at": "2999-01-01T00:00:00Z"}, "taken_at"),
    ],
)
def test_bad_fields_are_a_400_naming_the_field_and_store_nothing(
    assessment_task: Task, wound_nurse: User, photo_dir: Path, fields: dict[str, str], field: str
) -> None:
    response = upload(api(wound_nurse), assessment_task, jpeg_bytes(), **fields)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert WoundPhoto.objects.count() == 0 and stored_files(photo_dir) == []


def test_only_whoever_may_complete_the_assessment_attaches_photos(
    assessment_task: Task,
    enrollment: Any,
    coordinator: User,
    dialysis_nurse: User,
    auditor: User,
    off_team_wound_nurse: User,
    photo_dir: Path,
) -> None:
    care_team_add(enrollment_id=enrollment.pk, user=dialysis_nurse, role=Role.DIALYSIS_NURSING, actor=coordinator)

    assert upload(api(dialysis_nurse), assessment_task, jpeg_bytes()).status_code == 403  # on the team, other role
    assert upload(api(coordinator), assessment_task, jpeg_bytes()).status_code == 403
    assert upload(api(auditor), assessment_task, jpeg_bytes()).status_code == 403
    assert upload(api(off_team_wound_nurse), assessment_task, jpeg_bytes()).status_code == 404
    assert WoundPhoto.objects.count() == 0 and stored_files(photo_dir) == []


def test_a_task_that_is_not_a_wound_assessment_takes_no_photos(
    enrollment: Any, wound_nurse: User, photo_dir: Path
) -> None:
    other = (
        Task.objects.filter(enrollment=enrollment, role=Role.WOUND_NURSING)
        .exclude(template__code="wound-assessment")
        .first()
    )
    assert other is not None

    response = upload(api(wound_nurse), other, jpeg_bytes())

    assert response.status_code == 400
    assert "task" in response.json()["error"]["fields"]


@pytest.fixture
def photo(assessment_task: Task, wound_nurse: User, photo_dir: Path) -> WoundPhoto:
    response = upload(api(wound_nurse), assessment_task, jpeg_bytes())
    assert response.status_code == 201, response.content
    return WoundPhoto.objects.get(pk=response.json()["id"])


@pytest.mark.parametrize("path", ["", "image/", "thumbnail/"])
def test_another_sites_user_and_an_off_team_specialist_get_a_404_and_are_audited(
    photo: WoundPhoto, off_team_wound_nurse: User, other_site_admin_free_user: User, path: str
) -> None:
    for user in (off_team_wound_nurse, other_site_admin_free_user):
        response = api(user).get(f"/api/v1/wound-photos/{photo.pk}/{path}")
        assert response.status_code == 404, (user.username, path)
        event = _audit(response)
        assert event.actor_id == user.pk and event.http_status == 404


@pytest.mark.parametrize(
    ("path", "subtype"),
    [
        ("", "wound-photo-detail"),
        ("image/", "wound photo image"),
        ("image/?download=1", "wound photo download"),
        ("thumbnail/", "wound photo thumbnail"),
    ],
)
def test_every_view_and_download_is_an_audit_event_naming_the_photo_and_patient(
    photo: WoundPhoto, wound_nurse: User, auditor: User, path: str, subtype: str
) -> None:
    for user in (wound_nurse, auditor):
        response = api(user).get(f"/api/v1/wound-photos/{photo.pk}/{path}")
        assert response.status_code == 200
        event = _audit(response)
        assert (event.action, event.subtype, event.entity_type, event.entity_id) == (
            AuditAction.READ,
            subtype,
            "woundphoto",
            str(photo.pk),
        )
        assert event.patient_id == photo.enrollment.patient_id and event.actor_id == user.pk


def test_the_upload_is_audited_as_a_create(assessment_task: Task, wound_nurse: User, photo_dir: Path) -> None:
    response = upload(api(wound_nurse), assessment_task, jpeg_bytes())

    event = _audit(response)
    assert (event.action, event.entity_type, event.entity_id) == (
        AuditAction.CREATE,
        "woundphoto",
        str(response.json()["id"]),
    )


def test_the_list_is_scoped_and_filtered_by_lesion(
    photo: WoundPhoto, wound_nurse: User, off_team_wound_nurse: User, auditor: User
) -> None:
    assert [p["id"] for p in api(wound_nurse).get("/api/v1/wound-photos/").json()["results"]] == [photo.pk]
    assert [p["id"] for p in api(auditor).get("/api/v1/wound-photos/?lesion=L1 left thigh").json()["results"]] == [
        photo.pk
    ]
    assert api(auditor).get("/api/v1/wound-photos/?lesion=L2").json()["results"] == []
    assert api(off_team_wound_nurse).get("/api/v1/wound-photos/").json()["results"] == []


def test_soft_delete_needs_a_reason_hides_the_photo_and_the_purge_removes_the_files_after_retention(
    photo: WoundPhoto, wound_nurse: User, photo_dir: Path
) -> None:
    client = api(wound_nurse)
    assert client.post(f"/api/v1/wound-photos/{photo.pk}/delete/", {"reason": ""}, format="json").status_code == 400

    response = client.post(f"/api/v1/wound-photos/{photo.pk}/delete/", {"reason": "wrong patient"}, format="json")

    assert response.status_code == 204
    event = _audit(response)
    assert (event.action, event.subtype, event.entity_id) == (AuditAction.DELETE, "wound photo delete", str(photo.pk))
    photo.refresh_from_db()
    assert photo.deleted_by_id == wound_nurse.pk and photo.delete_reason == "wrong patient"
    assert client.get(f"/api/v1/wound-photos/{photo.pk}/image/").status_code == 404
    assert len(stored_files(photo_dir)) == 2  # kept until the retention period has passed

    call_command("purge_wound_photos", "--as-of", (timezone.now() + dt.timedelta(days=29)).isoformat())
    assert len(stored_files(photo_dir)) == 2
    call_command("purge_wound_photos", "--as-of", (timezone.now() + dt.timedelta(days=31)).isoformat())

    assert stored_files(photo_dir) == []
    photo.refresh_from_db()
    assert photo.purged_at is not None and photo.image_name == ""
    assert AuditEvent.objects.filter(subtype="wound photo purge", entity_id=str(photo.pk)).count() == 1


@pytest.mark.parametrize(
    ("mode", "fmt", "name"),
    [
        ("I;16", "PNG", "deep.png"),
        ("P", "PNG", "palette.png"),
        ("LA", "PNG", "grey-alpha.png"),
        ("CMYK", "JPEG", "cmyk.jpg"),
        ("L", "JPEG", "grey.jpg"),
    ],
)
def test_unusual_pixel_formats_are_stored_or_refused_cleanly_never_a_server_error(
    assessment_task: Task, wound_nurse: User, photo_dir: Path, mode: str, fmt: str, name: str
) -> None:
    out = io.BytesIO()
    Image.new(mode, (120, 90)).save(out, format=fmt)

    response = upload(api(wound_nurse), assessment_task, out.getvalue(), name=name)

    assert response.status_code in (201, 400), response.content
    if response.status_code == 201:
        stored = Image.open(
            io.BytesIO(api(wound_nurse).get(f"/api/v1/wound-photos/{response.json()['id']}/image/").content)
        )
        assert stored.format == fmt and stored.size == (120, 90)
    else:
        assert WoundPhoto.objects.count() == 0 and stored_files(photo_dir) == []


def test_a_cancelled_assessment_takes_no_photos(
    assessment_task: Task, coordinator: User, wound_nurse: User, photo_dir: Path
) -> None:
    from pathways.choices import TaskStatus
    from pathways.services.tasks import task_transition

    task_transition(
        task_id=assessment_task.pk, to_status=TaskStatus.CANCELLED, actor=coordinator, expected_version=None, reason="x"
    )

    response = upload(api(wound_nurse), assessment_task, jpeg_bytes())

    assert response.status_code == 409
    assert WoundPhoto.objects.count() == 0 and stored_files(photo_dir) == []


def test_a_photo_whose_file_is_gone_is_a_404_not_a_server_error(
    photo: WoundPhoto, wound_nurse: User, photo_dir: Path
) -> None:
    (photo_dir / photo.image_name).unlink()

    assert api(wound_nurse).get(f"/api/v1/wound-photos/{photo.pk}/image/").status_code == 404
    assert api(wound_nurse).get(f"/api/v1/wound-photos/{photo.pk}/thumbnail/").status_code == 200
