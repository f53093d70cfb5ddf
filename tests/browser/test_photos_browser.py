"""Wound photographs in headless Chromium: the patient page's lesion timeline with three weeks of photos and
scores (thumbnails load, text alternatives name the lesion and the date, axe finds no serious violation), and
photographing a lesion through the form."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from pathways.choices import Role
from pathways.models import Task, WoundPhoto
from pathways.services.enrollment import care_team_add, enrollment_apply
from tests.browser.axe import assert_accessible
from tests.browser.test_work_browser import _console_errors, _log_in
from tests.factories import PatientFactory
from tests.photos.conftest import jpeg_bytes, weekly_assessments

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_the_team_compares_three_weeks_of_two_lesions_side_by_side(
    live_server: Any,
    driver: Any,
    artifacts: Path,
    pathway: Any,
    site: Any,
    coordinator: Any,
    wound_nurse: Any,
) -> None:
    from selenium.webdriver.common.by import By

    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk,
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
    weekly_assessments(enrollment, wound_nurse, weeks=3)
    _log_in(driver, live_server, wound_nurse.username, "/work/")

    driver.get(f"{live_server.url}/patients/{enrollment.patient_id}/#photos-h")
    lesions = driver.find_elements(By.CSS_SELECTOR, "section.lesion")
    assert [s.get_attribute("data-lesion") for s in lesions] == ["L1 left thigh", "L2 right calf"]
    for section in lesions:
        weeks = section.find_elements(By.CSS_SELECTOR, "li.photo-week")
        assert [w.get_attribute("data-week") for w in weeks] == ["1", "2", "3"]
        assert [w.find_element(By.CSS_SELECTOR, ".bwat").text for w in weeks] == ["30", "27", "24"]
        for week in weeks:
            image = week.find_element(By.TAG_NAME, "img")
            assert image.get_attribute("src").endswith("/thumbnail/")
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0
            alt = image.get_attribute("alt")
            lesion = section.get_attribute("data-lesion")
            photo = WoundPhoto.objects.get(pk=week.get_attribute("data-photo"))
            local_day = photo.taken_at.astimezone(ZoneInfo(site.timezone)).date()
            assert alt == f"Wound photograph of lesion {lesion}, {local_day.isoformat()}"
    assert_accessible(driver)
    assert _console_errors(driver) == []
    driver.save_screenshot(str(artifacts / "photos-lesion-timeline.png"))

    # The full image opens on demand, through the scoped view.
    link = lesions[0].find_element(By.CSS_SELECTOR, "li.photo-week a")
    driver.get(link.get_attribute("href"))
    assert driver.execute_script("return document.contentType") == "image/jpeg"


def test_a_wound_nurse_photographs_a_lesion_through_the_form(
    live_server: Any,
    driver: Any,
    artifacts: Path,
    pathway: Any,
    site: Any,
    coordinator: Any,
    wound_nurse: Any,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator
    )
    care_team_add(enrollment_id=enrollment.pk, user=wound_nurse, role=Role.WOUND_NURSING, actor=coordinator)
    task = Task.objects.get(enrollment=enrollment, template__code="wound-assessment")
    _log_in(driver, live_server, wound_nurse.username, "/work/")
    driver.find_element(By.ID, f"photos-{task.pk}").click()
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Photographs:")
    assert_accessible(driver)
    picture = tmp_path / "lesion.jpg"
    picture.write_bytes(jpeg_bytes((400, 300)))
    driver.find_element(By.ID, "id_image").send_keys(str(picture))
    driver.find_element(By.ID, "id_lesion").send_keys("L1 left thigh")
    driver.find_element(By.ID, "id_body_site").send_keys("left thigh")
    driver.find_element(By.ID, "photo-submit").click()

    # The answer page comes after the upload is cleaned and stored: wait for it (a clean-clone CI run looked for
    # the image while the form page was still shown).
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    attached = WebDriverWait(driver, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#attached-photos img"))
    )
    assert attached.get_attribute("alt").startswith("Wound photograph of lesion L1 left thigh, ")
    assert WoundPhoto.objects.get().taken_by == wound_nurse
    assert_accessible(driver)
    assert _console_errors(driver) == []
    driver.save_screenshot(str(artifacts / "photos-form.png"))
