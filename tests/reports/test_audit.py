"""The audit trail: every API route leaves an AuditEvent, changes and their events commit together,
denied requests and logins are recorded, and the table is append-only in the database."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from pathways.choices import AuditAction, AuditOutcome, TaskStatus
from pathways.models import AuditEvent, AuditEventSite, Task
from pathways.services import audit as audit_services
from tests.api.conftest import World, client_for
from tests.api.test_access_matrix import MATRIX, PUBLIC, _ids, api_routes

ROUTES = sorted(api_routes())


def _event_for(response: Any) -> AuditEvent:
    request_id = response["X-Request-ID"]
    events = list(AuditEvent.objects.filter(request_id=request_id))
    assert len(events) == 1, f"expected one audit event for request {request_id}, found {len(events)}"
    return events[0]


def _first_case(name: str) -> tuple[Any, str | None, int]:
    assert name in MATRIX, f"route {name} has no access-matrix row, so it has no audit coverage test"
    row = MATRIX[name][0]
    role, status = next(iter(row.expect.items()))
    return row, (None if role == PUBLIC else role), status


@pytest.mark.postgres
@pytest.mark.parametrize("name", ROUTES)
def test_every_api_route_records_an_audit_event(world: World, name: str) -> None:
    row, role, expected = _first_case(name)
    if row.setup:
        row.setup(world)
    path = row.path.format(**_ids(world, "own", role))
    client = client_for(world.users[role] if role else None)
    body = row.body(world) if row.body else None
    before = AuditEvent.objects.count()
    response = client.generic(
        row.method, path, data=json.dumps(body) if body is not None else "", content_type="application/json"
    )
    assert response.status_code == expected, response.content[:300]
    event = _event_for(response)
    assert AuditEvent.objects.count() == before + 1
    assert event.http_status in (expected, None)
    assert (event.outcome == AuditOutcome.SUCCESS) == (expected < 400)
    assert event.entity_type, "the event names what was touched"
    assert event.path == path.split("?")[0]
    if role:
        assert event.actor == world.users[role]
    if row.method == "GET":
        # Reads are R; running a report (adherence) is E, FHIR's "perform a query/search operation".
        assert event.action in (AuditAction.READ, AuditAction.EXECUTE)
    # A single-patient read or change names the patient.
    if "{patient}" in row.path or "{enrollment}" in row.path or "{task}" in row.path:
        assert event.patient_id is not None, (name, event.entity_type)


@pytest.mark.postgres
@pytest.mark.parametrize("name", [n for n in ROUTES if n in MATRIX and any(r.outsiders for r in MATRIX[n])])
def test_a_request_denied_by_scoping_is_audited_as_a_failure(world: World, name: str) -> None:
    row = next(r for r in MATRIX[name] if r.outsiders)
    target, roles = next(iter(row.outsiders.items()))
    role = roles[0]
    path = row.path.format(**_ids(world, target, role))
    body = row.body(world) if row.body else None
    response = client_for(world.users[role]).generic(
        row.method, path, data=json.dumps(body) if body is not None else "", content_type="application/json"
    )
    assert response.status_code == 404
    event = _event_for(response)
    assert event.outcome != AuditOutcome.SUCCESS
    assert event.http_status == 404 and event.outcome_desc == "not_found"
    assert event.actor == world.users[role]


@pytest.mark.postgres
def test_anonymous_and_forbidden_requests_are_audited(world: World) -> None:
    anonymous = APIClient().get("/api/v1/tasks/", REMOTE_ADDR="192.0.2.10")
    event = _event_for(anonymous)
    assert (event.http_status, event.outcome, event.actor) == (401, AuditOutcome.SERIOUS_FAILURE, None)
    assert event.source_address == "192.0.2.10"
    forbidden = client_for(world.users["auditor"]).post(
        f"/api/v1/enrollments/{world.enrollment.pk}/hold/", {"reason": "x"}, format="json"
    )
    event = _event_for(forbidden)
    assert (event.http_status, event.outcome, event.outcome_desc) == (
        403,
        AuditOutcome.SERIOUS_FAILURE,
        "not_permitted",
    )
    assert event.patient_id == world.patient.pk


@pytest.mark.postgres
def test_a_change_and_its_audit_event_commit_together(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the audit event cannot be written, the change it describes is rolled back too."""
    nurse = world.users["wound_nurse"]
    client = client_for(nurse)
    task = Task.objects.get(pk=world.task.pk)

    def broken(**kwargs: Any) -> None:
        raise IntegrityError("audit store unavailable")

    monkeypatch.setattr("pathways.middleware.audit_record", broken)
    client.raise_request_exception = False
    response = client.post(f"/api/v1/tasks/{task.pk}/claim/", {"version": task.version}, format="json")
    assert response.status_code == 500
    task.refresh_from_db()
    assert task.assignee_id is None and task.status == TaskStatus.REQUESTED

    monkeypatch.undo()
    response = client.post(f"/api/v1/tasks/{task.pk}/claim/", {"version": task.version}, format="json")
    assert response.status_code == 200
    event = _event_for(response)
    assert (event.action, event.subtype, event.entity_type, event.entity_id) == (
        AuditAction.UPDATE,
        "task-claim",
        "task",
        str(task.pk),
    )
    assert event.patient_id == world.patient.pk and event.actor == nurse


@pytest.mark.postgres
def test_a_created_record_is_audited_with_its_id(world: World) -> None:
    response = client_for(world.users["coordinator"]).post(
        "/api/v1/enrollments/", {"patient": world.spare_patient.pk, "pathway": "calciphylaxis"}, format="json"
    )
    assert response.status_code == 201
    event = _event_for(response)
    assert (event.action, event.entity_type, event.entity_id) == (
        AuditAction.CREATE,
        "enrollment",
        str(response.json()["id"]),
    )
    assert event.patient_id == world.spare_patient.pk


@pytest.mark.postgres
def test_a_search_records_the_query_and_the_ids_returned(world: World) -> None:
    response = client_for(world.users["coordinator"]).get(f"/api/v1/tasks/?patient={world.patient.pk}&limit=5")
    event = _event_for(response)
    assert event.query == f"patient={world.patient.pk}&limit=5"
    assert event.subtype == "task-list search"
    assert event.entity_ids == [str(t["id"]) for t in response.json()["results"]]
    assert event.patient_id == world.patient.pk


@pytest.mark.postgres
def test_logins_succeeding_failing_and_locked_out_are_audited(world: World) -> None:
    client = APIClient()
    ok = client.post("/api/v1/auth/token/", {"username": "coord", "password": "test-password-123"}, format="json")
    assert ok.status_code == 200
    event = _event_for(ok)
    assert (event.action, event.subtype, event.outcome, event.actor) == (
        AuditAction.EXECUTE,
        "login",
        AuditOutcome.SUCCESS,
        world.users["coordinator"],
    )
    statuses = [
        client.post("/api/v1/auth/token/", {"username": "coord", "password": "wrong"}, format="json") for _ in range(6)
    ]
    assert [r.status_code for r in statuses] == [401] * 5 + [429]
    failures = [_event_for(r) for r in statuses]
    assert all(e.outcome == AuditOutcome.SERIOUS_FAILURE and e.actor is None for e in failures)
    assert all(e.actor_username == "coord" for e in failures)
    assert [e.outcome_desc for e in failures] == ["authentication_failed"] * 5 + ["throttled"]


@pytest.mark.postgres
def test_the_request_id_is_echoed_and_a_sane_incoming_one_is_kept(world: World) -> None:
    client = client_for(world.users["auditor"])
    response = client.get("/api/v1/sites/", HTTP_X_REQUEST_ID="trace-0123456789")
    assert response["X-Request-ID"] == "trace-0123456789"
    assert _event_for(response).request_id == "trace-0123456789"
    response = client.get("/api/v1/sites/", HTTP_X_REQUEST_ID="bad id; drop table")
    assert response["X-Request-ID"] != "bad id; drop table" and len(response["X-Request-ID"]) == 32


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE pathways_auditevent SET outcome = '0'",
        "DELETE FROM pathways_auditevent",
        # The sites an event concerns are part of it (migration 0011_audit_sites).
        "UPDATE pathways_auditeventsite SET site_id = site_id",
        "DELETE FROM pathways_auditeventsite",
    ],
)
def test_updating_or_deleting_audit_events_fails_in_postgresql(world: World, statement: str) -> None:
    audit_services.audit_record(
        action=AuditAction.READ, subtype="read", entity_type="task", patient_id=world.patient.pk
    )
    assert AuditEventSite.objects.filter(site=world.site).exists()
    assert connection.vendor == "postgresql"
    with (
        pytest.raises((InternalError, ProgrammingError)) as excinfo,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert "append-only" in str(excinfo.value)
    event = AuditEvent.objects.first()
    assert event is not None
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        event.delete()
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(subtype="edited")
    assert AuditEvent.objects.filter(pk=event.pk, subtype="read").exists()


@pytest.mark.postgres
def test_each_event_records_the_sites_it_concerns(world: World, other_site) -> None:
    from tests.factories import UserFactory

    both = UserFactory(username="two-sites", roles=["coordinator"], sites=[world.site, other_site])
    client = client_for(both)

    def sites_of(response) -> set[int]:
        return set(_event_for(response).site_links.values_list("site_id", flat=True))

    # A search concerns the sites of the patients it matched; one that matched nothing, the sites searched.
    assert sites_of(client.get(f"/api/v1/patients/?mrn={world.other_site_patient.mrn}")) == {other_site.pk}
    assert sites_of(client.get("/api/v1/patients/?mrn=NONE")) == {world.site.pk, other_site.pk}
    assert sites_of(client.get(f"/api/v1/patients/?mrn=NONE&site={world.site.pk}")) == {world.site.pk}
    for bad in ("%C2%B2", "9" * 40):  # not a usable id: never a 500, and the event still gets its sites
        response = client.get(f"/api/v1/patients/?mrn=NONE&site={bad}")
        assert response.status_code < 500
        assert sites_of(response) == {world.site.pk, other_site.pk}
    # The actor's sites are read when the event is written, not when its SQL was first compiled (issue 15).
    both.sites.remove(other_site)
    assert sites_of(client.get("/api/v1/patients/?mrn=NONE")) == {world.site.pk}
    both.sites.add(other_site)
    # Lists of tasks trace each task to its patient's site; a detail read, its patient's site.
    assert sites_of(client.get(f"/api/v1/tasks/?enrollment={world.enrollment.pk}")) == {world.site.pk}
    assert sites_of(client.get(f"/api/v1/tasks/{world.other_site_task.pk}/")) == {other_site.pk}
    # A failed login concerns the named account's sites; an unknown username, none.
    failed = APIClient().post("/api/v1/auth/token/", {"username": "two-sites", "password": "x"}, format="json")
    assert sites_of(failed) == {world.site.pk, other_site.pk}
    unknown = APIClient().post("/api/v1/auth/token/", {"username": "nobody", "password": "x"}, format="json")
    assert sites_of(unknown) == set()


@pytest.mark.postgres
def test_audit_record_rejects_unknown_actions_and_outcomes(db: None) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_services.audit_record(action="X", subtype="read")
    with pytest.raises(ValueError, match="unknown audit outcome"):
        audit_services.audit_record(action="R", subtype="read", outcome="1")
    assert not AuditEvent.objects.exists()


@pytest.mark.postgres
def test_patient_names_never_reach_the_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pathways")
    client = client_for(world.users["coordinator"])
    client.get(f"/api/v1/patients/{world.patient.pk}/")
    client.post("/api/v1/auth/token/", {"username": "coord", "password": "wrong"}, format="json")
    Client().get("/dashboard/")
    text = caplog.text + json.dumps(list(AuditEvent.objects.values("subtype", "query", "outcome_desc", "path")))
    assert world.patient.family_name not in text


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_audited_list_writes_its_event_and_sites_in_one_statement(world: World) -> None:
    # Issue 15: the event, the sites it concerns and the patient's existence check were four statements.
    client = client_for(world.users["wound_nurse"])
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/tasks/")
    assert response.status_code == 200
    writes = [q["sql"] for q in queries.captured_queries if "pathways_audit" in q["sql"]]
    assert len(writes) == 1 and writes[0].startswith("WITH event AS (INSERT INTO")
    event = _event_for(response)
    task_sites = set(
        Task.objects.filter(pk__in=[int(i) for i in event.entity_ids]).values_list(
            "enrollment__patient__site_id", flat=True
        )
    )
    assert task_sites and set(event.site_links.values_list("site_id", flat=True)) == task_sites


@pytest.mark.django_db
def test_an_event_naming_a_patient_that_does_not_exist_stores_no_patient(world: World) -> None:
    # The request's patient id is kept only if such a patient exists (the column is a foreign key); the event
    # then concerns the actor's sites, as an event without a patient does.
    actor = world.users["coordinator"]
    event = audit_services.audit_record(action="R", subtype="read", actor=actor, patient_id=987654321)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.patient_id, event.patient_id) == (None, None)
    assert set(stored.site_links.values_list("site_id", flat=True)) == set(actor.sites.values_list("pk", flat=True))
    huge = audit_services.audit_record(action="R", subtype="read", actor=actor, patient_id=10**30)
    assert AuditEvent.objects.get(pk=huge.pk).patient_id is None
