"""The automatic logoff's in-page warning in headless Chromium: shortly before the idle timeout the page says
so and offers "Stay signed in" (which keeps the session); left alone, the page goes to the login page, which
says why. Short limits stand in for the 15 minutes; axe checks the page with the warning shown."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pathways.models import AuditEvent, User
from tests.browser.axe import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_the_page_warns_before_the_idle_logoff_and_stay_signed_in_keeps_the_session(
    driver: Any, live_server: Any, wound_nurse: User, settings: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    settings.SESSION_IDLE_TIMEOUT = dt.timedelta(seconds=8)
    settings.SESSION_IDLE_WARNING = dt.timedelta(seconds=5)
    driver.get(f"{live_server.url}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys("wound")
    driver.find_element(By.NAME, "password").send_keys("test-password-123")
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(ec.url_to_be(f"{live_server.url}/work/"))

    warning = driver.find_element(By.ID, "session-warning")
    assert not warning.is_displayed()
    WebDriverWait(driver, 10).until(lambda d: warning.is_displayed())
    assert "signed out in" in warning.text
    assert_accessible(driver)
    driver.find_element(By.ID, "session-stay").click()
    WebDriverWait(driver, 5).until(lambda d: not warning.is_displayed())
    assert driver.current_url == f"{live_server.url}/work/"

    # Left alone this time: the page itself goes to the login page, which says why.
    WebDriverWait(driver, 20).until(lambda d: "/accounts/login/" in d.current_url)
    assert "expired=idle" in driver.current_url
    assert "without activity" in driver.find_element(By.ID, "session-expired").text
    event = AuditEvent.objects.filter(subtype="session.expired").get()
    assert (event.actor_username, event.outcome_desc) == ("wound", "idle")
