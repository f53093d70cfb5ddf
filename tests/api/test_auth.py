"""Token login: real tokens work, failures are counted in the database and lock the username."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from pathways.models import LoginThrottle
from pathways.services.auth import MAX_FAILURES_PER_USERNAME
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
    # Logging in again returns the same token.
    assert _login(APIClient(), "tokenuser", PASSWORD).json()["token"] == token


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
        for _ in range(MAX_FAILURES_PER_USERNAME):
            response = _login(client, "victim", "wrong-password")
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "authentication_failed"
        locked = _login(client, "VICTIM", PASSWORD)  # case does not dodge the counter
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "throttled"
        assert int(locked["Retry-After"]) > 0
    row = LoginThrottle.objects.get(key="user:victim")
    assert row.failures == MAX_FAILURES_PER_USERNAME and row.locked_until is not None
    with time_machine.travel(start + dt.timedelta(hours=1), tick=False):
        assert _login(client, "victim", PASSWORD).status_code == 200
    row.refresh_from_db()
    assert row.failures == 0 and row.locked_until is None


@pytest.mark.postgres
def test_unknown_usernames_are_counted_too_so_responses_do_not_reveal_accounts(db: None) -> None:
    response = _login(APIClient(), "nobody-here", "whatever")
    assert response.status_code == 401
    assert LoginThrottle.objects.get(key="user:nobody-here").failures == 1


@pytest.mark.postgres
@pytest.mark.parametrize(
    "body",
    [{}, {"username": "a"}, {"username": "a", "password": "b", "remember": True}, {"username": ["a"], "password": "b"}],
)
def test_malformed_login_bodies_are_400_and_count_nothing(db: None, body: dict) -> None:
    response = APIClient().post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 400
    assert not LoginThrottle.objects.exists()


@pytest.mark.postgres
def test_inactive_users_cannot_log_in(site) -> None:
    UserFactory(username="gone", roles=["coordinator"], sites=[site], is_active=False)
    assert _login(APIClient(), "gone", PASSWORD).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted(db: None) -> None:
    import threading

    from django.db import connection

    from pathways.services.auth import login_failure_record

    barrier = threading.Barrier(10)

    def fail() -> None:
        try:
            barrier.wait(timeout=10)
            login_failure_record(username="target", address="10.0.0.9")
        finally:
            connection.close()

    threads = [threading.Thread(target=fail) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert LoginThrottle.objects.get(key="user:target").failures == 10
    assert LoginThrottle.objects.get(key="addr:10.0.0.9").failures == 10
