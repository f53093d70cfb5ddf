"""The specialists' workspace in headless Chromium: a wound nurse works a dressing change and the next one comes
48 h after the completion; two nurses race for one task; a dialysis nurse completes labs in mmol/L and sees
what the rules did; an auditor sees no write control. Every page: axe-core (no serious or critical
violation), no console error, a screenshot in test-artifacts/."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from pathways.choices import Role, TaskStatus
from pathways.models import Enrollment, Flag, Task, User
from pathways.services.enrollment import care_team_add, enrollment_apply
from pathways.services.sweeps import schedules_materialize_due
from tests.browser.axe import assert_accessible
from tests.browser.conftest import CHROMEDRIVER, CHROMIUM
from tests.factories import PatientFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def _enrol(site, coordinator: User, members: list[tuple[User, str]]) -> Enrollment:
    patient = PatientFactory(site=site)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    for user, role in members:
        care_team_add(enrollment_id=enrollment.pk, user=user, role=role, actor=coordinator)
    return enrollment


def _console_errors(driver: Any) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def _wait(driver: Any, css: str, timeout: int = 15) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _log_in(driver: Any, live_server: Any, username: str, lands_on: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{live_server.url}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys("test-password-123")
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(ec.url_to_be(f"{live_server.url}{lands_on}"))


def _check_page(driver: Any, artifacts: Path, name: str) -> None:
    """axe-core, the console, a screenshot: on every workspace page."""
    assert_accessible(driver)
    assert _console_errors(driver) == []
    driver.save_screenshot(str(artifacts / f"work-{name}.png"))


@pytest.fixture
def second_driver() -> Iterator[Any]:
    """Another, independent browser session (its own profile and cookies)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium not installed")
    profile = tempfile.mkdtemp(prefix="carepath-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1440,1800")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_wound_nurse_claims_and_completes_a_dressing_change_and_the_next_comes_48h_later(
    live_server, driver, artifacts, pathway, site, coordinator, wound_nurse
) -> None:
    from selenium.webdriver.common.by import By

    enrollment = _enrol(site, coordinator, [(wound_nurse, Role.WOUND_NURSING)])
    dressing = Task.objects.get(enrollment=enrollment, template__code="dressing-change")
    _log_in(driver, live_server, wound_nurse.username, "/work/")
    assert driver.find_element(By.TAG_NAME, "h1").text == "My work"
    _check_page(driver, artifacts, "my-work")

    driver.find_element(By.ID, f"claim-{dressing.pk}").click()
    _wait(driver, f'#task-{dressing.pk}[data-status="accepted"]')
    assert "Claimed" in driver.find_element(By.ID, "live").text
    driver.find_element(By.ID, f"open-complete-{dressing.pk}").click()
    driver.find_element(By.ID, f"outcome-complete-{dressing.pk}").send_keys("Dressing changed; wound bed clean")
    _check_page(driver, artifacts, "my-work-complete-form")
    driver.find_element(By.ID, f"complete-{dressing.pk}").click()
    _wait(driver, f'#task-{dressing.pk}[data-status="completed"]')
    done = Task.objects.get(pk=dressing.pk)
    assert done.status == TaskStatus.COMPLETED and done.completed_by == wound_nurse

    # The scheduler's sweep (as beat would run it later) makes the next dressing change, 48 h after completion.
    schedules_materialize_due(now=done.completed_at + dt.timedelta(hours=30))
    following = Task.objects.get(schedule=done.schedule, occurrence=done.occurrence + 1)
    # Available 48 h after the completion, due within the template's 6 h window.
    assert following.available_at - done.completed_at == dt.timedelta(hours=48)
    assert following.due_at - following.available_at == dt.timedelta(hours=6)
    driver.get(f"{live_server.url}/work/")
    assert driver.find_element(By.ID, f"task-{following.pk}").get_attribute("data-status") == "requested"
    _check_page(driver, artifacts, "my-work-next-dressing")


def test_two_nurses_claim_the_same_task_one_wins_the_other_sees_who_took_it(
    live_server, driver, second_driver, artifacts, pathway, site, coordinator, wound_nurse
) -> None:
    from selenium.webdriver.common.by import By

    colleague = UserFactory(username="wound2", roles=[Role.WOUND_NURSING], sites=[site])
    enrollment = _enrol(site, coordinator, [(wound_nurse, Role.WOUND_NURSING), (colleague, Role.WOUND_NURSING)])
    task = Task.objects.get(enrollment=enrollment, template__code="dressing-change")
    _log_in(driver, live_server, wound_nurse.username, "/work/")
    _log_in(second_driver, live_server, colleague.username, "/work/")
    # Both see it in the pool; the colleague claims first.
    second_driver.find_element(By.ID, f"claim-{task.pk}").click()
    _wait(second_driver, f'#task-{task.pk}[data-status="accepted"]')
    driver.find_element(By.ID, f"claim-{task.pk}").click()
    notice = _wait(driver, f"#notice-{task.pk}")
    assert "Changed by wound2 at " in notice.text and "assigned to wound2" in notice.text
    assert driver.find_element(By.TAG_NAME, "h1").text == "My work"  # the page, not an error page
    assert not driver.find_elements(By.ID, f"claim-{task.pk}")
    assert Task.objects.get(pk=task.pk).assignee == colleague
    _check_page(driver, artifacts, "claim-race")


def test_a_dialysis_nurse_completes_labs_in_mmol_and_sees_the_nephrology_task_and_the_flag(
    live_server, driver, artifacts, pathway, site, coordinator, dialysis_nurse
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    enrollment = _enrol(site, coordinator, [(dialysis_nurse, Role.DIALYSIS_NURSING)])
    labs = Task.objects.get(enrollment=enrollment, template__code="pre-dialysis-labs")
    _log_in(driver, live_server, dialysis_nurse.username, "/work/")
    driver.find_element(By.ID, f"claim-{labs.pk}").click()
    _wait(driver, f"#values-{labs.pk}").click()
    _wait(driver, "#values-form")
    for code, value, unit in (("calcium", "2.6", "mmol/L"), ("phosphate", "2.2", "mmol/L"), ("albumin", "35", "g/L")):
        driver.find_element(By.ID, f"id_value_{code}").send_keys(value)
        Select(driver.find_element(By.ID, f"id_unit_{code}")).select_by_value(unit)
    _check_page(driver, artifacts, "complete-values-form")
    driver.find_element(By.ID, "values-submit").click()
    tasks = _wait(driver, "#result-tasks")
    assert "High phosphate or calcium: nephrology review" in tasks.text
    assert "Ca x P product at or above 55" in driver.find_element(By.ID, "result-flags").text
    _check_page(driver, artifacts, "complete-values-result")
    assert Flag.objects.filter(enrollment=enrollment, code="ca-x-p-high").exists()

    # The patient page shows the flag and the lab trends.
    driver.get(f"{live_server.url}/patients/{enrollment.patient_id}/")
    assert driver.find_element(By.CSS_SELECTOR, '[data-flag="ca-x-p-high"]')
    assert driver.find_element(By.ID, "trend-ca_x_p")
    _check_page(driver, artifacts, "patient")


def test_an_auditor_sees_no_write_control(
    live_server, driver, artifacts, pathway, site, coordinator, auditor, wound_nurse
) -> None:
    from selenium.webdriver.common.by import By

    enrollment = _enrol(site, coordinator, [(wound_nurse, Role.WOUND_NURSING)])
    _log_in(driver, live_server, auditor.username, "/dashboard/")
    assert not driver.find_elements(By.ID, "nav-my-work")
    for path, name in ((f"/patients/{enrollment.patient_id}/", "patient-auditor"), ("/work/", "my-work-auditor")):
        driver.get(f"{live_server.url}{path}")
        assert not driver.find_elements(By.CSS_SELECTOR, "form[hx-post], details.act-more, .values-link")
        # Searching (a GET form) is reading; no form in the page posts anything.
        assert driver.find_elements(By.CSS_SELECTOR, 'main form[method="post"]') == []
        _check_page(driver, artifacts, name)


def test_the_notifications_and_error_pages_are_accessible(
    live_server, driver, artifacts, pathway, site, coordinator, wound_nurse
) -> None:
    from selenium.webdriver.common.by import By

    from pathways.models import Notification

    enrollment = _enrol(site, coordinator, [(wound_nurse, Role.WOUND_NURSING)])
    task = Task.objects.filter(enrollment=enrollment).first()
    assert task is not None
    Notification.objects.create(
        user=wound_nurse,
        task=task,
        kind="assigned",
        message="Assigned to you",
        dedupe_key="b",
        created_at=timezone.now(),
    )
    _log_in(driver, live_server, wound_nurse.username, "/work/")
    assert driver.find_element(By.ID, "unread-count").text == "1"
    driver.get(f"{live_server.url}/work/notifications/")
    _check_page(driver, artifacts, "notifications")
    driver.find_element(By.ID, "read-all").click()
    _wait(driver, "#notifications li.read")
    assert driver.find_element(By.ID, "unread-count").text == "0"
    assert "marked read" in driver.find_element(By.ID, "live").text
    # The error pages: the layout and a way back (their status codes are logged by Chromium as console
    # errors, which is the browser's report of the status, not a page error, so only axe is checked here).
    for path, name in (("/dashboard/", "403"), ("/no-such-page/", "404")):
        driver.get(f"{live_server.url}{path}")
        assert driver.find_element(By.ID, "back-to-start").get_attribute("href") == f"{live_server.url}/work/"
        assert_accessible(driver)
        driver.save_screenshot(str(artifacts / f"work-{name}.png"))
