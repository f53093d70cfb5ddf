"""Sign-on through a real OpenID Connect provider (tests/oidc/provider.mjs) in headless Chromium: each mapped
role lands on its start page; a user moved out of a group loses that role at the next sign-on; a user with no
mapped role gets the explanatory page and no session; a user disabled at the provider gets no session; logoff
ends the provider's session too. Each step's audit event is checked."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from pathways.models import AuditEvent, ExternalIdentity, Site, User
from tests.browser.axe import assert_accessible
from tests.oidc.conftest import DEFAULT_USERS, PASSWORD, Provider

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def _wait_url(driver: Any, predicate: Any, timeout: int = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: predicate(d.current_url))


def _sign_in(driver: Any, live_server: Any, provider: Provider, username: str) -> None:
    """A fresh browser session at both ends, then from Carepath's login page through the provider's sign-in
    form, back to Carepath."""
    from selenium.webdriver.common.by import By

    driver.get(f"{provider.issuer}/.well-known/openid-configuration")
    driver.delete_all_cookies()
    driver.get(f"{live_server.url}/healthz")
    driver.delete_all_cookies()
    driver.get(f"{live_server.url}/accounts/login/")
    button = driver.find_element(By.ID, "sign-on")
    assert button.text == "Sign in with Test Hospital"
    button.click()
    _wait_url(driver, lambda url: "/interaction/" in url)
    driver.find_element(By.ID, "op-username").send_keys(username)
    driver.find_element(By.ID, "op-password").send_keys(PASSWORD)
    driver.find_element(By.ID, "op-submit").click()


def _path(driver: Any, live_server: Any) -> str:
    return str(driver.current_url).removeprefix(live_server.url)


@pytest.fixture
def chi(db: None) -> Site:
    return Site.objects.create(code="chi", name="Chicago", timezone="America/Chicago")


@pytest.mark.parametrize(
    ("username", "role", "start"),
    [
        ("op-coordinator", "coordinator", "workspace:patients"),
        ("op-auditor", "auditor", "dashboard:overview"),
        ("op-wound", "wound_nursing", "workspace:my-work"),
    ],
)
def test_each_mapped_role_signs_on_and_lands_on_its_start_page(
    driver: Any, live_server: Any, oidc_provider: Provider, chi: Site, username: str, role: str, start: str
) -> None:
    _sign_in(driver, live_server, oidc_provider, username)
    _wait_url(driver, lambda url: url == f"{live_server.url}{reverse(start)}")
    user = User.objects.get(username=username)
    assert user.roles == [role]
    assert list(user.sites.values_list("code", flat=True)) == ["chi"]
    assert ExternalIdentity.objects.get(user=user).issuer == oidc_provider.issuer
    assert user.has_usable_password() is False
    event = AuditEvent.objects.filter(subtype="login.oidc").latest("pk")
    assert (event.actor_id, event.outcome, event.outcome_desc) == (user.pk, "0", "")


def test_a_user_moved_out_of_a_group_loses_that_role_at_the_next_sign_on(
    driver: Any, live_server: Any, oidc_provider: Provider, chi: Site
) -> None:
    _sign_in(driver, live_server, oidc_provider, "op-coordinator")
    _wait_url(driver, lambda url: url == f"{live_server.url}{reverse('workspace:patients')}")
    assert User.objects.get(username="op-coordinator").roles == ["coordinator"]

    # At the hospital: moved from the coordinators' group to the auditors'.
    oidc_provider.set_users({**DEFAULT_USERS, "op-coordinator": ["cp-auditors", "cp-site-chi"]})
    _sign_in(driver, live_server, oidc_provider, "op-coordinator")
    _wait_url(driver, lambda url: url == f"{live_server.url}{reverse('dashboard:overview')}")
    assert User.objects.get(username="op-coordinator").roles == ["auditor"]

    # And then out of every Carepath group: the next sign-on is refused and the roles are gone.
    oidc_provider.set_users({**DEFAULT_USERS, "op-coordinator": ["hospital-staff"]})
    _sign_in(driver, live_server, oidc_provider, "op-coordinator")
    _wait_url(driver, lambda url: "/oidc/callback/" in url)
    assert User.objects.get(username="op-coordinator").roles == []


def test_a_user_with_no_mapped_role_gets_the_explanatory_page_and_no_session(
    driver: Any, live_server: Any, oidc_provider: Provider, chi: Site
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(driver, live_server, oidc_provider, "op-nobody")
    _wait_url(driver, lambda url: "/oidc/callback/" in url)
    assert driver.find_element(By.ID, "sign-on-refused").text == "You have no access to Carepath"
    assert driver.find_element(By.ID, "sign-on-reason").get_attribute("data-reason") == "no_role"
    assert_accessible(driver)
    driver.get(f"{live_server.url}{reverse('workspace:my-work')}")
    assert _path(driver, live_server).startswith("/accounts/login/")
    event = AuditEvent.objects.filter(subtype="login.oidc").latest("pk")
    assert (event.actor_username, event.outcome, event.outcome_desc) == ("op-nobody", "8", "no_role")


def test_a_user_disabled_at_the_provider_cannot_start_a_session(
    driver: Any, live_server: Any, oidc_provider: Provider, chi: Site
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _sign_in(driver, live_server, oidc_provider, "op-wound")
    _wait_url(driver, lambda url: url == f"{live_server.url}{reverse('workspace:my-work')}")

    oidc_provider.set_users(DEFAULT_USERS, disabled=("op-wound",))
    _sign_in(driver, live_server, oidc_provider, "op-wound")
    # The provider answers the submitted form with a new page: wait for it rather than read the old one.
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "op-error"))
    assert driver.find_element(By.ID, "op-error").text == "This account is disabled."
    driver.get(f"{live_server.url}{reverse('workspace:my-work')}")
    assert _path(driver, live_server).startswith("/accounts/login/")
    assert AuditEvent.objects.filter(subtype="login.oidc", outcome="0").count() == 1


def test_logging_off_ends_the_carepath_session_and_the_providers(
    driver: Any, live_server: Any, oidc_provider: Provider, chi: Site
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(driver, live_server, oidc_provider, "op-wound")
    _wait_url(driver, lambda url: url == f"{live_server.url}{reverse('workspace:my-work')}")
    user = User.objects.get(username="op-wound")

    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
    # RP-initiated logout: the provider asks to confirm, then sends the browser back to Carepath's login page.
    _wait_url(driver, lambda url: url.startswith(f"{oidc_provider.issuer}/session/end"))
    driver.find_element(By.CSS_SELECTOR, "button[name=logout]").click()
    _wait_url(driver, lambda url: url.startswith(f"{live_server.url}/accounts/login/"))
    event = AuditEvent.objects.filter(subtype="logout").latest("pk")
    assert (event.actor_id, event.outcome_desc) == (user.pk, "logout")

    assert_accessible(driver)  # the login page with "Sign in with Test Hospital"
    # The provider's session is gone too: signing in again asks for the password.
    driver.find_element(By.ID, "sign-on").click()
    _wait_url(driver, lambda url: "/interaction/" in url)
    assert driver.find_element(By.ID, "op-username")
