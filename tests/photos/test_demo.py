"""The demo: a wound nurse photographs two lesions at each weekly assessment, and the team compares them side by
side on the patient page."""

from __future__ import annotations

from pathlib import Path

import pytest

from pathways.models import Observation, User, WoundPhoto
from pathways.services.demo import demo_seed
from tests.photos.conftest import web

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_demo_photographs_two_lesions_at_each_weekly_assessment(pathway, photo_dir: Path) -> None:
    demo_seed()

    photos = list(WoundPhoto.objects.select_related("enrollment__patient__site", "task"))
    assert photos and all(p.enrollment.patient.site.code == "chi" for p in photos)
    by_task: dict[int, set[str]] = {}
    for photo in photos:
        by_task.setdefault(photo.task_id, set()).add(photo.lesion)
    assert all(lesions == {"L1 left thigh", "L2 right calf"} for lesions in by_task.values())
    enrollment = photos[0].enrollment
    weeks = {p.task_id for p in photos if p.enrollment_id == enrollment.pk}
    assert len(weeks) >= 2
    assert Observation.objects.filter(task_id__in=weeks, code="bwat_cua").count() == len(weeks)
    assert all(p.taken_by.username == "wound-nursing" for p in photos)

    page = web(User.objects.get(username="wound-nursing")).get(f"/patients/{enrollment.patient_id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-lesion="L1 left thigh"' in html and 'data-lesion="L2 right calf"' in html
    assert html.count('class="photo-week"') == sum(1 for p in photos if p.enrollment_id == enrollment.pk)
