"""GET /api/v1/audit-events/ (auditors and admins): filters, scoping, CSV export; GET /api/v1/users/."""

from __future__ import annotations

import csv
import io

import pytest

from pathways.choices import AuditAction, AuditOutcome
from pathways.models import AuditEvent
from tests.api.conftest import World, client_for


def _results(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


@pytest.mark.postgres
def test_an_auditor_finds_who_read_a_patient_and_exports_it_as_csv(world: World) -> None:
    coordinator, auditor = world.users["coordinator"], world.users["auditor"]
    client_for(coordinator).get(f"/api/v1/patients/{world.patient.pk}/")
    client_for(coordinator).get(f"/api/v1/patients/{world.other_site_patient.pk}/")  # denied: another site
    client = client_for(auditor)
    rows = _results(client.get(f"/api/v1/audit-events/?patient={world.patient.pk}&actor={coordinator.pk}&action=R"))
    assert [(r["entity_type"], r["entity_id"], r["outcome"]) for r in rows] == [
        ("patient", str(world.patient.pk), AuditOutcome.SUCCESS)
    ]
    # The other site's patient is not the Chicago auditor's business; the denied attempt has no patient id
    # in their scope, but the attempt itself (by Chicago staff) is visible.
    denied = _results(client.get(f"/api/v1/audit-events/?actor={coordinator.pk}&outcome=4"))
    assert any(
        r["http_status"] == 404 and r["path"].endswith(f"/patients/{world.other_site_patient.pk}/") for r in denied
    )

    export = client.get(f"/api/v1/audit-events/?format=csv&patient={world.patient.pk}&actor={coordinator.pk}&action=R")
    assert export["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [r["id"] for r in table] == [str(r["id"]) for r in rows]
    assert table[0]["request_id"] == rows[0]["request_id"]


@pytest.mark.postgres
def test_audit_event_filters_by_entity_and_time(world: World) -> None:
    client = client_for(world.users["auditor"])
    client_for(world.users["coordinator"]).get(f"/api/v1/enrollments/{world.enrollment.pk}/")
    rows = _results(client.get(f"/api/v1/audit-events/?entity_type=enrollment&entity_id={world.enrollment.pk}"))
    assert rows and all(r["entity_id"] == str(world.enrollment.pk) for r in rows)
    assert _results(client.get("/api/v1/audit-events/?since=2999-01-01T00:00:00Z")) == []
    assert client.get("/api/v1/audit-events/?action=Z").status_code == 400
    assert client.get("/api/v1/audit-events/?since=soon").status_code == 400


@pytest.mark.postgres
def test_the_audit_log_is_not_for_coordinators_or_specialists(world: World) -> None:
    for role in ("coordinator", "wound_nurse"):
        response = client_for(world.users[role]).get("/api/v1/audit-events/")
        assert response.status_code == 403
    # ...and the refusals are themselves audited.
    assert AuditEvent.objects.filter(subtype="audit-event-list", outcome=AuditOutcome.SERIOUS_FAILURE).count() == 2


@pytest.mark.postgres
def test_an_auditor_does_not_see_another_sites_patient_events(world: World, other_site) -> None:
    from tests.factories import UserFactory

    nyc_coordinator = UserFactory(username="nyc-coord", roles=["coordinator"], sites=[other_site])
    client_for(nyc_coordinator).get(f"/api/v1/patients/{world.other_site_patient.pk}/")
    rows = _results(client_for(world.users["auditor"]).get(f"/api/v1/audit-events/?actor={nyc_coordinator.pk}"))
    assert rows == []
    admin_rows = _results(client_for(world.users["admin"]).get(f"/api/v1/audit-events/?actor={nyc_coordinator.pk}"))
    assert [r["patient"] for r in admin_rows] == [world.other_site_patient.pk]


@pytest.mark.postgres
def test_csv_cells_that_look_like_formulas_are_neutralised(world: World) -> None:
    client_for(world.users["coordinator"]).get("/api/v1/tasks/?=HYPERLINK(1)")
    export = client_for(world.users["auditor"]).get("/api/v1/audit-events/?format=csv&action=R")
    queries = [row["query"] for row in csv.DictReader(io.StringIO(export.content.decode()))]
    assert "'=HYPERLINK(1)" in queries and "=HYPERLINK(1)" not in queries


@pytest.mark.postgres
def test_a_coordinator_finds_wound_nurses_at_their_site(world: World) -> None:
    rows = _results(client_for(world.users["coordinator"]).get("/api/v1/users/?role=wound_nursing"))
    assert [r["username"] for r in rows] == ["wound"]  # not nyc-wound, who works at the other site
    rows = _results(client_for(world.users["coordinator"]).get(f"/api/v1/users/?site={world.site.pk}"))
    assert {"coord", "audit", "boss", "wound", "neph"} <= {r["username"] for r in rows}
    assert client_for(world.users["coordinator"]).get("/api/v1/users/?role=wizard").status_code == 400


@pytest.mark.postgres
def test_reading_the_audit_log_is_itself_audited(world: World) -> None:
    response = client_for(world.users["auditor"]).get("/api/v1/audit-events/?limit=5")
    event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.action, event.entity_type, event.query) == (AuditAction.READ, "auditevent", "limit=5")
