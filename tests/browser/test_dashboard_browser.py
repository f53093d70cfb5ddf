"""The dashboard in a real browser: an auditor logs in, the pages load without console errors, the charts
render, and the numbers shown are the API's. Screenshots go to test-artifacts/ (set
CAREPATH_UPDATE_SCREENSHOTS=1 to refresh docs/screenshots/dashboard.png as well)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from pathways.choices import Role, TaskStatus
from pathways.models import Enrollment, Task, User
from pathways.services.enrollment import care_team_add, enrollment_apply
from tests.factories import PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard.png"
COUNTS = ["due", "completed_on_time", "completed_late", "not_completed", "cancelled", "overdue_open", "escalated"]


def _seed(site, coordinator: User, wound_nurse: User) -> list[Enrollment]:
    """Four synthetic enrollments started 3 weeks ago; a third of their past tasks done on time, a third late,
    the rest still open (overdue), one cancelled."""
    now = timezone.now()
    enrollments = []
    for weeks_ago in (3, 3, 2, 1):
        patient = PatientFactory(site=site)
        enrollment = enrollment_apply(
            patient_id=patient.pk,
            pathway_slug="calciphylaxis",
            actor=coordinator,
            now=now - dt.timedelta(weeks=weeks_ago),
        )
        care_team_add(enrollment_id=enrollment.pk, user=wound_nurse, role=Role.WOUND_NURSING, actor=coordinator)
        enrollments.append(enrollment)
    past = Task.objects.filter(enrollment__in=enrollments, due_at__lt=now).order_by("pk")
    for index, task in enumerate(past):  # constructing test data, row by row on purpose
        if index % 3 == 0:
            done = task.due_at - dt.timedelta(hours=1)
        elif index % 3 == 1 and task.due_at + dt.timedelta(hours=6) < now:
            done = task.due_at + dt.timedelta(hours=6)
        else:
            continue
        Task.objects.filter(pk=task.pk).update(
            status=TaskStatus.COMPLETED, completed_at=done, started_at=done - dt.timedelta(minutes=30)
        )
    cancel = past.filter(status=TaskStatus.REQUESTED).first()
    if cancel is not None:
        Task.objects.filter(pk=cancel.pk).update(status=TaskStatus.CANCELLED)
    return enrollments


def _console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def _log_in(driver, live_server, username: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{live_server.url}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys("test-password-123")
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(ec.url_to_be(f"{live_server.url}/dashboard/"))


def _api_json(driver, url: str) -> dict:
    from selenium.webdriver.common.by import By

    driver.get(url)
    return json.loads(driver.find_element(By.TAG_NAME, "body").text)


def _table(driver, table_id: str) -> dict[str, dict[str, str]]:
    from selenium.webdriver.common.by import By

    rows = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr[data-group]"):
        cells = {td.get_attribute("data-metric"): td for td in tr.find_elements(By.CSS_SELECTOR, "td[data-metric]")}
        values = {name: cell.text for name, cell in cells.items()}
        values["on_time_rate"] = cells["on_time_rate"].get_attribute("data-value")
        rows[tr.get_attribute("data-group")] = values
    return rows


def test_an_auditor_sees_charts_and_the_apis_numbers_without_console_errors(
    live_server, driver, artifacts, pathway, site, coordinator, auditor, wound_nurse
) -> None:
    from selenium.webdriver.common.by import By

    enrollments = _seed(site, coordinator, wound_nurse)
    _log_in(driver, live_server, auditor.username)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Adherence"
    assert _console_errors(driver) == []

    # The charts render: one visible bar per group with something due, and weekly trend lines.
    for chart, table in (("chart-prong", "table-prong"), ("chart-role", "table-role")):
        bars = driver.find_elements(By.CSS_SELECTOR, f"#{chart} rect.bar")
        shown = _table(driver, table)
        assert len(bars) == len([g for g, row in shown.items() if row["on_time_rate"] != ""]) > 0
        assert all(bar.size["width"] > 0 and bar.size["height"] > 0 for bar in bars)
    for trend in ("trend-prong", "trend-role"):
        assert driver.find_elements(By.CSS_SELECTOR, f"#{trend} polyline.series, #{trend} circle.point")
    by_prong, by_role = _table(driver, "table-prong"), _table(driver, "table-role")
    start = driver.find_element(By.ID, "window-start").get_attribute("datetime")
    end = driver.find_element(By.ID, "window-end").get_attribute("datetime")
    # The "same numbers as the API" link carries the same window, URL-encoded ("+00:00" must survive).
    link = driver.find_element(By.LINK_TEXT, "the API").get_attribute("href")
    assert urlencode({"start": start}) in link
    driver.save_screenshot(str(artifacts / "dashboard.png"))
    if os.environ.get("CAREPATH_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts / "dashboard.png", DOCS_SCREENSHOT)

    # The numbers shown are the API's for the same window (read in the same browser session).
    for group_by, shown in (("prong", by_prong), ("role", by_role)):
        query = urlencode({"group_by": group_by, "start": start, "end": end, "format": "json"})
        api = _api_json(driver, f"{live_server.url}/api/v1/adherence/?{query}")
        assert set(shown) == {row["group"] for row in api["results"]}
        for row in api["results"]:
            assert {name: int(shown[row["group"]][name]) for name in COUNTS} == {name: row[name] for name in COUNTS}
            expected_rate = "" if row["on_time_rate"] is None else str(row["on_time_rate"])
            assert shown[row["group"]]["on_time_rate"] == expected_rate
    assert sum(int(row["due"]) for row in by_prong.values()) > 0

    # The other pages: overdue list, a patient's board, the audit log, each without console errors.
    driver.get(f"{live_server.url}/dashboard/overdue/")
    assert int(driver.find_element(By.ID, "overdue-total").text) == sum(
        int(r["overdue_open"]) for r in by_prong.values()
    )
    patient_id = enrollments[0].patient_id
    driver.get(f"{live_server.url}/dashboard/patients/{patient_id}/")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#board section.prong")) == 4
    assert driver.find_elements(By.CSS_SELECTOR, "#board article.card.status-completed")
    driver.save_screenshot(str(artifacts / "board.png"))
    driver.get(f"{live_server.url}/dashboard/audit/?{urlencode({'patient': patient_id})}")
    subtypes = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr td:nth-child(4)")]
    assert "workspace patient page" in subtypes  # the board (now the patient page) just viewed is in the log
    driver.save_screenshot(str(artifacts / "audit.png"))
    assert _console_errors(driver) == []


def test_a_wrong_password_shows_an_error_on_the_login_page(live_server, driver, site, auditor) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{live_server.url}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(auditor.username)
    driver.find_element(By.NAME, "password").send_keys("not-the-password")
    driver.find_element(By.ID, "login-submit").click()
    # Wait for the answer page: right after the click the old page may still be the one shown.
    errors = WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.ID, "login-errors")))
    assert "correct username and password" in errors.text
    assert driver.current_url.endswith("/accounts/login/")
    assert _console_errors(driver) == []
