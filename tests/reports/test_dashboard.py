"""Dashboard pages through Django's test client: login (with the API's lockout), scoping, audit events."""

from __future__ import annotations

import pytest
from django.test import Client

from pathways.choices import AuditAction, AuditOutcome
from pathways.models import AuditEvent, User
from tests.api.conftest import World


def _login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _event(response) -> AuditEvent:
    return AuditEvent.objects.get(request_id=response["X-Request-ID"])


@pytest.mark.postgres
def test_logging_in_through_the_page_lands_on_the_dashboard_and_is_audited(world: World) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": "audit", "password": "test-password-123"})
    # Every role goes through the workspace's landing page, which sends an auditor to the dashboard.
    assert response.status_code == 302 and response["Location"] == "/"
    event = _event(response)
    assert (event.subtype, event.outcome, event.actor) == ("login", AuditOutcome.SUCCESS, world.users["auditor"])
    assert client.get("/")["Location"] == "/dashboard/"
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b'id="chart-prong"' in page.content


@pytest.mark.postgres
def test_the_login_page_shares_the_apis_lockout(world: World) -> None:
    client = Client()
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "audit", "password": "wrong"})
        assert response.status_code == 200 and b"correct username and password" in response.content
    locked = client.post("/accounts/login/", {"username": "audit", "password": "test-password-123"})
    assert locked.status_code == 200 and b"too many failed logins" in locked.content
    assert _event(locked).outcome_desc == "throttled"
    # The API's token endpoint sees the same lock.
    api = Client().post("/api/v1/auth/token/", {"username": "audit", "password": "test-password-123"})
    assert api.status_code == 429


@pytest.mark.postgres
def test_pages_need_a_login(world: World) -> None:
    for path in ("/dashboard/", "/dashboard/overdue/", f"/dashboard/patients/{world.patient.pk}/", "/dashboard/audit/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("auditor", "/dashboard/", 200),
        ("coordinator", "/dashboard/", 200),
        ("wound_nurse", "/dashboard/", 403),
        ("auditor", "/dashboard/overdue/", 200),
        ("wound_nurse", "/dashboard/overdue/", 403),
        ("auditor", "/dashboard/audit/", 200),
        ("admin", "/dashboard/audit/", 200),
        ("coordinator", "/dashboard/audit/", 403),
        ("wound_nurse", "/dashboard/patients/", 200),
    ],
)
def test_who_may_open_which_page(world: World, role: str, path: str, status: int) -> None:
    response = _login(world.users[role]).get(path)
    assert response.status_code == status
    event = _event(response)
    assert (event.outcome == AuditOutcome.SUCCESS) == (status == 200)


@pytest.mark.postgres
def test_a_patients_board_shows_the_prongs_side_by_side_and_is_audited_as_a_patient_read(world: World) -> None:
    # The board is now the workspace's patient page (tests/web/test_patient_page.py); the old URL redirects.
    response = _login(world.users["auditor"]).get(f"/dashboard/patients/{world.patient.pk}/", follow=True)
    assert response.redirect_chain == [(f"/patients/{world.patient.pk}/", 302)]
    assert response.status_code == 200
    html = response.content.decode()
    for prong in ("wound_care", "oxygenation_blood_flow", "calcium_reduction", "support"):
        assert f'data-prong="{prong}"' in html
    assert f'data-task="{world.task.pk}"' in html
    event = _event(response)
    assert (event.action, event.entity_type, event.patient_id) == (AuditAction.READ, "patient", world.patient.pk)


@pytest.mark.postgres
@pytest.mark.parametrize(("role", "target"), [("auditor", "other_site_patient"), ("wound_nurse", "other_team_patient")])
def test_a_board_out_of_scope_is_a_404(world: World, role: str, target: str) -> None:
    response = _login(world.users[role]).get(f"/dashboard/patients/{getattr(world, target).pk}/")
    assert response.status_code == 404
    assert _event(response).outcome == AuditOutcome.MINOR_FAILURE


@pytest.mark.postgres
def test_the_overdue_list_shows_open_past_due_tasks_of_the_users_sites(world: World) -> None:
    from django.utils import timezone

    from pathways.models import Task

    past = timezone.now() - timezone.timedelta(hours=30)
    Task.objects.filter(pk=world.task.pk).update(available_at=past, due_at=past)
    Task.objects.filter(pk=world.other_site_task.pk).update(available_at=past, due_at=past)
    response = _login(world.users["auditor"]).get("/dashboard/overdue/")
    html = response.content.decode()
    assert f'data-task="{world.task.pk}"' in html
    assert f'data-task="{world.other_site_task.pk}"' not in html
    assert str(world.task.pk) in _event(response).entity_ids
