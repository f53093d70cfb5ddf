"""Token login: real tokens work; failures lock a username at one address (django-axes), never a whole NAT."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from pathways.request_context import client_address
from pathways.services.auth import LoginFailed, LoginLocked, auth_login
from tests.factories import UserFactory

PASSWORD = "test-password-123"


def _login(client: APIClient, username: str, password: str):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")


@pytest.mark.postgres
def test_a_token_from_the_login_endpoint_authenticates_requests(site) -> None:
    user = UserFactory(username="tokenuser", roles=["coordinator"], sites=[site])
    client = APIClient()
    response = _login(client, "tokenuser", PASSWORD)
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.get("/api/v1/sites/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/sites/").status_code == 200
    user.refresh_from_db()
    assert user.last_login is not None
    # Keys are stored hashed, so a login cannot hand back an earlier key: it issues a new one, and the
    # earlier one keeps working until it expires (issue 18).
    second = _login(APIClient(), "tokenuser", PASSWORD).json()["token"]
    assert second != token
    assert client.get("/api/v1/sites/").status_code == 200


@pytest.mark.postgres
def test_a_bad_token_is_a_401_in_the_error_shape(db: None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/tasks/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.postgres
def test_repeated_failures_lock_the_username_even_for_the_right_password(site) -> None:
    UserFactory(username="victim", roles=["coordinator"], sites=[site])
    client = APIClient()
    start = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            response = _login(client, "victim", "wrong-password")
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "authentication_failed"
        locked = _login(client, "VICTIM", PASSWORD)  # case does not dodge the counter
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "throttled"
        assert 0 < int(locked["Retry-After"]) <= 15 * 60
    attempt = AccessAttempt.objects.get(username="victim")
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT
    with time_machine.travel(start + dt.timedelta(hours=1), tick=False):
        assert _login(client, "victim", PASSWORD).status_code == 200
    assert not AccessAttempt.objects.filter(username="victim").exists()  # a success starts the count again


@pytest.mark.postgres
def test_unknown_usernames_are_counted_too_so_responses_do_not_reveal_accounts(db: None) -> None:
    response = _login(APIClient(), "nobody-here", "whatever")
    assert response.status_code == 401
    assert AccessAttempt.objects.get(username="nobody-here").failures_since_start == 1


@pytest.mark.postgres
@pytest.mark.parametrize(
    "body",
    [{}, {"username": "a"}, {"username": "a", "password": "b", "remember": True}, {"username": ["a"], "password": "b"}],
)
def test_malformed_login_bodies_are_400_and_count_nothing(db: None, body: dict) -> None:
    response = APIClient().post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 400
    assert not AccessAttempt.objects.exists()


@pytest.mark.postgres
def test_inactive_users_cannot_log_in(site) -> None:
    UserFactory(username="gone", roles=["coordinator"], sites=[site], is_active=False)
    assert _login(APIClient(), "gone", PASSWORD).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted(db: None) -> None:
    import threading

    from django.db import connection

    barrier = threading.Barrier(10)

    def fail() -> None:
        try:
            barrier.wait(timeout=10)
            with pytest.raises(LoginFailed):
                auth_login(request=_request("10.0.0.9"), username="target", password="wrong-password")
        finally:
            connection.close()

    threads = [threading.Thread(target=fail) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(AccessAttempt.objects.filter(username="target").values_list("failures_since_start", flat=True)) == 10
    with pytest.raises(LoginLocked):
        auth_login(request=_request("10.0.0.9"), username="target", password="wrong-password")


def _request(address: str, forwarded_for: str | None = None) -> HttpRequest:
    extra = {"REMOTE_ADDR": address}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().post("/api/v1/auth/token/", **extra)


@pytest.mark.postgres
def test_credential_stuffing_from_a_shared_address_does_not_lock_out_a_colleague_there(site) -> None:
    UserFactory(username="colleague", roles=["coordinator"], sites=[site])
    nat = "203.0.113.7"  # the hospital's one outside address
    for i in range(60):
        for _ in range(2):
            with pytest.raises(LoginFailed):
                auth_login(request=_request(nat), username=f"staff{i:02d}", password="Winter2026!")
    assert AccessAttempt.objects.filter(ip_address=nat).count() == 60
    # The colleague, and every stuffed username itself with its right password, still log in from the NAT.
    assert auth_login(request=_request(nat), username="colleague", password=PASSWORD).username == "colleague"
    assert _login(APIClient(REMOTE_ADDR=nat), "colleague", PASSWORD).status_code == 200


@pytest.mark.postgres
def test_a_locked_username_is_locked_at_that_address_only(site) -> None:
    UserFactory(username="nurse", roles=["coordinator"], sites=[site])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        with pytest.raises(LoginFailed):
            auth_login(request=_request("198.51.100.1"), username="nurse", password="guess")
    with pytest.raises(LoginLocked):
        auth_login(request=_request("198.51.100.1"), username="nurse", password=PASSWORD)
    assert auth_login(request=_request("198.51.100.2"), username="nurse", password=PASSWORD).username == "nurse"


@pytest.mark.postgres
def test_x_forwarded_for_counts_only_as_far_as_the_trusted_proxies(site) -> None:
    UserFactory(username="ward", roles=["coordinator"], sites=[site])
    proxy = "10.0.0.1"
    # No trusted proxy (the default): the header is ignored, so rotating it does not dodge the lock.
    for i in range(settings.AXES_FAILURE_LIMIT):
        with pytest.raises(LoginFailed):
            auth_login(request=_request(proxy, f"192.0.2.{i}"), username="ward", password="guess")
    with pytest.raises(LoginLocked):
        auth_login(request=_request(proxy, "192.0.2.99"), username="ward", password=PASSWORD)
    with override_settings(TRUSTED_PROXY_COUNT=1):
        # Behind one proxy: the address it appended is the client's; what the client wrote before it is not.
        assert client_address(_request(proxy, "6.6.6.6, 192.0.2.50")) == "192.0.2.50"
        assert client_address(_request(proxy, "not-an-address")) is None
        for spoofed in ("6.6.6.1", "6.6.6.2", "6.6.6.3", "6.6.6.4", "6.6.6.5"):
            with pytest.raises(LoginFailed):
                auth_login(request=_request(proxy, f"{spoofed}, 192.0.2.50"), username="ward", password="guess")
        with pytest.raises(LoginLocked):
            auth_login(request=_request(proxy, "7.7.7.7, 192.0.2.50"), username="ward", password=PASSWORD)
        assert auth_login(request=_request(proxy, "192.0.2.51"), username="ward", password=PASSWORD)


@pytest.mark.postgres
def test_rotating_x_forwarded_for_does_not_dodge_the_login_rate(db: None) -> None:
    cache.clear()  # DRF's throttle history lives in the cache
    try:
        rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])
        answers = [
            APIClient(HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").post(
                "/api/v1/auth/token/", {"username": f"u{i}", "password": "p"}, format="json"
            )
            for i in range(rate + 1)
        ]
        assert [a.status_code for a in answers[:rate]] == [401] * rate
        assert answers[rate].status_code == 429 and int(answers[rate]["Retry-After"]) > 0
    finally:
        cache.clear()


@pytest.mark.postgres
def test_a_failed_login_is_logged_once_without_the_username(db: None, caplog) -> None:
    with caplog.at_level("INFO"):
        assert _login(APIClient(), "someone.secret", "wrong-password").status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.levelno >= 30]
    assert len(lines) == 1 and lines[0].startswith("login failed"), lines
    assert not any("someone.secret" in r.getMessage() for r in caplog.records)
