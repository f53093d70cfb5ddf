"""Fixtures for wound photographs: a patient enrolled with a wound nurse on the care team, the wound-assessment
task, images made with Pillow (synthetic: no real photographs), and a scratch photo store per test."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from pathways.choices import DialysisModality, Role, TaskStatus
from pathways.models import Enrollment, PathwayTemplate, Site, Task, User, WoundPhoto
from pathways.services.api_tokens import api_token_issue
from pathways.services.demo import synthetic_wound_photo
from pathways.services.enrollment import care_team_add, enrollment_apply
from pathways.services.observations import ObservationInput, task_complete_with_values
from pathways.services.photos import PhotoInput, wound_photo_add
from pathways.services.sweeps import schedules_materialize_due
from pathways.services.tasks import task_claim, task_transition
from tests.factories import PatientFactory, UserFactory


def jpeg_bytes(
    size: tuple[int, int] = (640, 480), *, color: tuple[int, int, int] = (180, 60, 50), exif: Any = None
) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    if exif is not None:
        image.save(out, format="JPEG", exif=exif)
    else:
        image.save(out, format="JPEG")
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (320, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (20, 120, 200, 255)).save(out, format="PNG")
    return out.getvalue()


def gps_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF with a GPS position (41.88 N, 87.63 W), a camera serial number and optionally an orientation."""
    exif = Image.Exif()
    exif[0x010F] = "SyntheticCam"  # Make
    exif[0xA431] = "SERIAL-0001"  # BodySerialNumber
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (41.0, 52.0, 48.0)
    gps[3] = "W"
    gps[4] = (87.0, 37.0, 48.0)
    return exif


@pytest.fixture
def photo_dir(tmp_path: Path, settings: Any) -> Path:
    """A scratch filesystem store for this test's photos."""
    location = tmp_path / "photos"
    settings.STORAGES = {
        **settings.STORAGES,
        "wound_photos": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location), "base_url": None},
        },
    }
    return location


def stored_files(location: Path) -> list[Path]:
    return sorted(p for p in location.rglob("*") if p.is_file()) if location.exists() else []


@pytest.fixture
def wound_patient(site: Site):
    return PatientFactory(site=site, dialysis_modality=DialysisModality.HEMODIALYSIS, dialysis_days=[0, 2, 4])


@pytest.fixture
def enrollment(pathway: PathwayTemplate, coordinator: User, wound_patient, wound_nurse: User) -> Enrollment:
    enrollment = enrollment_apply(patient_id=wound_patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    care_team_add(enrollment_id=enrollment.pk, user=wound_nurse, role=Role.WOUND_NURSING, actor=coordinator)
    return enrollment


@pytest.fixture
def assessment_task(enrollment: Enrollment) -> Task:
    return Task.objects.get(enrollment=enrollment, template__code="wound-assessment")


@pytest.fixture
def off_team_wound_nurse(site: Site) -> User:
    """A wound nurse at the same site, on no care team."""
    return UserFactory(username="wound-off", roles=[Role.WOUND_NURSING], sites=[site])


@pytest.fixture
def other_site_admin_free_user(other_site: Site) -> User:
    """A wound nurse and coordinator at another site."""
    return UserFactory(username="nyc-wound", roles=[Role.WOUND_NURSING, Role.COORDINATOR], sites=[other_site])


def api(user: User) -> APIClient:
    client = APIClient()
    # A real token through the real authentication (issue 18's hashed tokens), not force_authenticate.
    _, key = api_token_issue(user=user, audit=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def web(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: APIClient, task: Task, data: bytes, *, name: str = "photo.jpg", **fields: Any) -> Any:
    payload = {"task": task.pk, "lesion": "L1 left thigh", "body_site": "left thigh", **fields}
    payload["image"] = _named(data, name)
    return client.post("/api/v1/wound-photos/", payload, format="multipart")


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def photo_on(enrollment: Enrollment, actor: User, *, lesion: str = "L1 left thigh") -> WoundPhoto:
    """A small synthetic photograph on the enrollment's wound-assessment task, attached through the service."""
    task = Task.objects.filter(enrollment=enrollment, template__code="wound-assessment").order_by("pk").first()
    assert task is not None
    photo = PhotoInput(data=jpeg_bytes((64, 48)), filename="p.jpg", lesion=lesion, body_site="left thigh")
    return wound_photo_add(task_id=task.pk, photo=photo, actor=actor)


def weekly_assessments(
    enrollment: Enrollment,
    nurse: User,
    *,
    weeks: int,
    lesions: tuple[str, ...] = ("L1 left thigh", "L2 right calf"),
    photos_per_lesion: int = 1,
) -> list[Task]:
    """Work `weeks` weekly wound assessments as the nurse would, through the real services and at their times:
    materialize the week's task, claim, start, complete it with a BWAT-CUA score (30, 27, 24, ...) and length
    and width, then photograph each lesion. The enrollment must have started at least `weeks` weeks ago."""
    tasks = []
    for week in range(weeks):
        at = enrollment.enrolled_at + dt.timedelta(days=7 * week, hours=2)
        schedules_materialize_due(now=at)
        task = (
            Task.objects.filter(enrollment=enrollment, template__code="wound-assessment", status=TaskStatus.REQUESTED)
            .order_by("due_at")
            .first()
        )
        assert task is not None, f"no wound assessment open in week {week + 1}"
        task_claim(task_id=task.pk, actor=nurse, expected_version=None, now=at)
        task_transition(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=nurse, expected_version=None, now=at)
        task_complete_with_values(
            task_id=task.pk,
            actor=nurse,
            expected_version=None,
            values=[
                ObservationInput("bwat_cua", str(30 - 3 * week), "score"),
                ObservationInput("wound_length", str(4 - 0.5 * week), "cm"),
                ObservationInput("wound_width", "2", "cm"),
            ],
            now=at,
        )
        for index, lesion in enumerate(lesions):
            for n in range(photos_per_lesion):
                drawing = synthetic_wound_photo(
                    index=index, week=week, length_cm=Decimal(4 - 0.5 * week), width_cm=Decimal(2)
                )
                photo = PhotoInput(
                    data=drawing,
                    filename="lesion.jpg",
                    lesion=lesion,
                    body_site=lesion.split(" ", 1)[1],
                    taken_at=at + dt.timedelta(minutes=n),
                )
                wound_photo_add(task_id=task.pk, photo=photo, actor=nurse, now=at + dt.timedelta(minutes=n + 1))
        tasks.append(task)
    return tasks
