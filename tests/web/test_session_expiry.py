"""Automatic logoff with time travel: an idle session ends after SESSION_IDLE_TIMEOUT, an active one after
SESSION_ABSOLUTE_LIFETIME; each end is audited; htmx and API callers get answers they can act on; the page
carries the warning's limits and "Stay signed in" counts as activity. Local login and logoff are audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from pathways.models import AuditEvent, User

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _signed_in(client: Client, user: User) -> None:
    response = client.post("/accounts/login/", {"username": user.username, "password": "test-password-123"})
    assert response.status_code == 302


def test_an_idle_session_ends_after_the_idle_timeout_and_is_audited(client: Client, wound_nurse: User) -> None:
    my_work = reverse("workspace:my-work")
    with time_machine.travel(START, tick=False) as clock:
        _signed_in(client, wound_nurse)
        assert client.get(my_work).status_code == 200
        clock.shift(dt.timedelta(minutes=14))
        assert client.get(my_work).status_code == 200  # activity: the idle clock starts again
        clock.shift(dt.timedelta(minutes=14))
        assert client.get(my_work).status_code == 200
        clock.shift(dt.timedelta(minutes=15, seconds=31))
        response = client.get(my_work)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?expired=idle")
    event = AuditEvent.objects.filter(subtype="session.expired").get()
    assert (event.actor_id, event.outcome_desc) == (wound_nurse.pk, "idle")
    assert client.get(my_work)["Location"].startswith("/accounts/login/")
    page = client.get("/accounts/login/?expired=idle").content.decode()
    assert "signed out after 15 minutes without activity" in page


def test_an_active_session_ends_at_the_absolute_lifetime(client: Client, wound_nurse: User, settings: Any) -> None:
    settings.SESSION_ABSOLUTE_LIFETIME = dt.timedelta(hours=1)
    my_work = reverse("workspace:my-work")
    with time_machine.travel(START, tick=False) as clock:
        _signed_in(client, wound_nurse)
        for _ in range(6):  # a request every 10 minutes: never idle
            assert client.get(my_work).status_code == 200
            clock.shift(dt.timedelta(minutes=10))
        clock.shift(dt.timedelta(minutes=1))
        response = client.get(my_work)
    assert response["Location"].startswith("/accounts/login/?expired=absolute")
    event = AuditEvent.objects.filter(subtype="session.expired").get()
    assert event.outcome_desc == "absolute"


def test_the_idle_timeout_is_configurable(client: Client, wound_nurse: User, settings: Any) -> None:
    settings.SESSION_IDLE_TIMEOUT = dt.timedelta(minutes=5)
    with time_machine.travel(START, tick=False) as clock:
        _signed_in(client, wound_nurse)
        assert client.get(reverse("workspace:my-work")).status_code == 200
        clock.shift(dt.timedelta(minutes=6))
        assert client.get(reverse("workspace:my-work")).status_code == 302


def test_htmx_and_api_callers_of_an_expired_session_get_answers_they_can_act_on(
    client: Client, coordinator: User
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        _signed_in(client, coordinator)
        client.get(reverse("workspace:home"))
        clock.shift(dt.timedelta(minutes=16))
        htmx = client.get(reverse("workspace:my-work"), HTTP_HX_REQUEST="true")
        assert htmx.status_code == 204
        assert htmx["HX-Redirect"].startswith("/accounts/login/?expired=idle")

        _signed_in(client, coordinator)
        client.get(reverse("workspace:home"))
        clock.shift(dt.timedelta(minutes=16))
        api = client.get("/api/v1/patients/")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "session_expired"


def test_the_page_carries_the_warning_and_stay_signed_in_counts_as_activity(
    client: Client, wound_nurse: User, settings: Any
) -> None:
    settings.SESSION_IDLE_WARNING = dt.timedelta(seconds=90)
    with time_machine.travel(START, tick=False) as clock:
        _signed_in(client, wound_nurse)
        page = client.get(reverse("workspace:my-work")).content.decode()
        assert 'data-session-idle-seconds="900"' in page and 'data-session-warning-seconds="90"' in page
        assert 'id="session-warning"' in page and "session-expiry.js" in page
        clock.shift(dt.timedelta(minutes=14))
        keepalive = client.post(reverse("session-keepalive"))
        assert keepalive.json() == {"idle_seconds": 900}
        clock.shift(dt.timedelta(minutes=14))
        assert client.get(reverse("workspace:my-work")).status_code == 200


def test_local_login_success_failure_and_logoff_are_audited(client: Client, wound_nurse: User) -> None:
    assert client.post("/accounts/login/", {"username": "wound", "password": "wrong-password"}).status_code == 200
    _signed_in(client, wound_nurse)
    assert client.post(reverse("logout")).status_code == 302
    events = list(AuditEvent.objects.filter(subtype__in=["login", "logout"]).order_by("pk"))
    assert [(e.subtype, e.outcome, e.actor_username) for e in events] == [
        ("login", "8", "wound"),
        ("login", "0", "wound"),
        ("logout", "0", "wound"),
    ]
    assert client.get(reverse("workspace:my-work")).status_code == 302
