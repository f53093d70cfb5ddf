"""A coordinator's day in a real browser: register a hemodialysis patient dialysed Mon/Wed/Fri, read the
enrolment preview (sodium thiosulfate on those days), enrol, add a dialysis nurse to the care team and
bulk-assign three pool tasks to that nurse. Every coordinator page: axe-core (no serious or critical
violation), no console error, a screenshot in test-artifacts/."""

from __future__ import annotations

import pytest

from pathways.choices import Role
from pathways.models import Enrollment, Patient, Task, User
from pathways.services.sweeps import schedules_materialize_due
from tests.browser.axe import assert_accessible
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def _console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def _check_page(driver, artifacts, name: str) -> None:
    assert_accessible(driver)
    assert _console_errors(driver) == [], name
    driver.save_screenshot(str(artifacts / f"coord-{name}.png"))


def _set(driver, element_id: str, value: str) -> None:
    # Date and time inputs take typed keys in the browser's locale format; set the ISO value directly.
    driver.execute_script("document.getElementById(arguments[0]).value = arguments[1];", element_id, value)


def test_a_coordinator_registers_previews_enrols_builds_the_team_and_assigns_work(
    live_server, driver, artifacts, pathway, site, coordinator: User
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    nurse = UserFactory(
        username="dnurse", first_name="Dana", last_name="Nurse", roles=[Role.DIALYSIS_NURSING], sites=[site]
    )
    wait = WebDriverWait(driver, 15)

    driver.get(f"{live_server.url}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(coordinator.username)
    driver.find_element(By.NAME, "password").send_keys("test-password-123")
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: "/accounts/login/" not in d.current_url)
    driver.get_log("browser")  # the landing page is not one of these pages

    # The registry, with the unassigned work one click away.
    driver.get(f"{live_server.url}/patients/")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Patients"
    assert driver.find_element(By.ID, "unassigned-work").get_attribute("href").endswith("/assign/")
    _check_page(driver, artifacts, "registry")

    # Register a hemodialysis patient dialysed Monday, Wednesday and Friday.
    driver.find_element(By.ID, "register-patient").click()
    wait.until(lambda d: d.current_url.endswith("/patients/new/"))
    _check_page(driver, artifacts, "register")
    driver.find_element(By.ID, "id_mrn").send_keys("BR-0001")
    driver.find_element(By.ID, "id_given_name").send_keys("Synthetic")
    driver.find_element(By.ID, "id_family_name").send_keys("Browser")
    _set(driver, "id_birth_date", "1957-06-01")
    Select(driver.find_element(By.ID, "id_dialysis_modality")).select_by_value("HD")
    for day in (0, 2, 4):
        driver.find_element(By.ID, f"id_dialysis_days_{day}").click()
    _set(driver, "id_dialysis_session_time", "13:00")
    driver.find_element(By.ID, "patient-save").click()
    wait.until(lambda d: d.current_url.endswith("/enrol/"))
    patient = Patient.objects.get(site=site, mrn="BR-0001")
    assert patient.dialysis_days == [0, 2, 4] and patient.dialysis_modality == "HD"

    # The preview: sodium thiosulfate on Mon/Wed/Fri at the session time, local time.
    assert driver.find_element(By.ID, "dialysis-days").text == "Mon, Wed, Fri"
    row = driver.find_element(By.CSS_SELECTOR, '#preview-schedules tr[data-template="sodium-thiosulfate"]')
    sessions = [li.text for li in row.find_elements(By.CSS_SELECTOR, "ul.occurrences li")]
    assert len(sessions) >= 5
    assert {s.split()[0] for s in sessions} == {"Mon", "Wed", "Fri"} and all("13:00" in s for s in sessions)
    _check_page(driver, artifacts, "enrol-preview")

    # Enrol. The confirmation lands on the patient page (the specialists' workspace, tested there).
    driver.find_element(By.ID, "enrol-confirm").click()
    wait.until(lambda d: d.current_url.endswith(f"/patients/{patient.pk}/"))
    enrollment = Enrollment.objects.get(patient=patient, status="active")
    driver.get_log("browser")

    # Add the dialysis nurse to the care team.
    driver.get(f"{live_server.url}/enrollments/{enrollment.pk}/care-team/")
    _check_page(driver, artifacts, "care-team")
    Select(driver.find_element(By.ID, "id_user")).select_by_value(str(nurse.pk))
    Select(driver.find_element(By.ID, "id_role")).select_by_value(Role.DIALYSIS_NURSING)
    driver.find_element(By.ID, "care-team-add-submit").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#care-team-table tr[data-user="dnurse"]'))
    _check_page(driver, artifacts, "care-team-added")

    # The scheduler's sweep makes the coming sessions' work (sodium thiosulfate, pain score at dialysis).
    schedules_materialize_due(horizon_hours=24 * 7)
    pool = Task.objects.filter(enrollment=enrollment, role=Role.DIALYSIS_NURSING, assignee__isnull=True)
    assert pool.count() >= 3

    # Bulk-assign three pool tasks to the nurse.
    driver.get(f"{live_server.url}/assign/?patient={patient.pk}")
    _check_page(driver, artifacts, "board")
    column = driver.find_element(By.CSS_SELECTOR, 'section[data-role="dialysis_nursing"]')
    boxes = column.find_elements(By.CSS_SELECTOR, 'input[name="tasks"]')[:3]
    chosen = [int(box.get_attribute("value").split(":")[0]) for box in boxes]
    for box in boxes:
        box.click()
    Select(column.find_element(By.CSS_SELECTOR, "select[name=assignee]")).select_by_value(str(nurse.pk))
    column.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#live .message"))
    assert "Assigned 3 task(s) to Dana Nurse" in driver.find_element(By.ID, "live").text
    assert set(Task.objects.filter(assignee=nurse).values_list("pk", flat=True)) == set(chosen)
    _check_page(driver, artifacts, "board-assigned")

    # The 30-day calendar.
    driver.get(f"{live_server.url}/enrollments/{enrollment.pk}/calendar/")
    assert driver.find_elements(By.CSS_SELECTOR, '#calendar li[data-template="sodium-thiosulfate"]')
    _check_page(driver, artifacts, "calendar")
