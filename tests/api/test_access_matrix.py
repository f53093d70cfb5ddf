"""The access matrix: role x route x method, generated against the URL configuration.

Every /api/v1/ route must have a row here (a new route without one fails `test_every_api_route_has_a_row`).
Each row is exercised for every role on an in-scope object, and for out-of-scope objects (another site's,
another care team's) which must answer 404 - never 403, which would confirm the object exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from pathways.models import Enrollment, Task, User
from pathways.services.api_tokens import api_token_issue, service_account_create
from pathways.services.enrollment import enrollment_hold
from pathways.services.observations import observation_record
from pathways.services.tasks import task_assign, task_claim, task_hold
from tests.api.conftest import World, client_for, notify
from tests.factories import UserFactory
from tests.photos.conftest import photo_on
from tests.versions import load_version_two

C, A, D, W = "coordinator", "auditor", "admin", "wound_nurse"
ROLES = (C, A, D, W)
PUBLIC = "public"  # no authentication needed
API_PREFIX = "api/v1/"


def _task(world: World) -> Task:
    return Task.objects.get(pk=world.task.pk)


def assigned(world: World) -> None:
    task_assign(task_id=world.task.pk, assignee=world.users[W], actor=None, expected_version=None)


def claimed(world: World) -> None:
    task_claim(task_id=world.task.pk, actor=world.users[W], expected_version=None)


def held(world: World) -> None:
    claimed(world)
    task_hold(task_id=world.task.pk, actor=world.users[W], expected_version=None, reason="patient at imaging")


def enrollment_held(world: World) -> None:
    enrollment_hold(enrollment_id=world.enrollment.pk, actor=None, reason="hospital transfer")


def sts_safety_held(world: World) -> None:
    # Through the real rule engine: a systolic BP under 90 holds sodium thiosulfate until a clinician releases it.
    observation_record(enrollment_id=world.enrollment.pk, code="systolic_bp", value=82, unit="mmHg", actor=None)


def suspected(world: World) -> None:
    # The world's enrollment as if it had been enrolled as a suspected case (its diagnosis still pending).
    Enrollment.objects.filter(pk=world.enrollment.pk).update(diagnosis_status="provisional")


def version_two_loaded(world: World) -> None:
    load_version_two()


def version(world: World, **extra: Any) -> dict[str, Any]:
    return {"version": _task(world).version, **extra}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # placeholders: {site} {patient} {pathway} {enrollment} {task} {member} {notification} {photo}
    expect: dict[str, int]  # status per role for an in-scope object (PUBLIC: the anonymous answer)
    body: Callable[[World], dict[str, Any]] | None = None
    setup: Callable[[World], None] | None = None
    # Which out-of-scope targets to probe; each must be 404 for the roles listed.
    outsiders: dict[str, tuple[str, ...]] = field(default_factory=dict)


ALL_200 = {C: 200, A: 200, D: 200, W: 200}
MANAGE = {C: 200, D: 200, A: 403, W: 403}
WORK = {W: 200, D: 200, C: 403, A: 403}
WORK_OR_MANAGE = {W: 200, C: 200, D: 200, A: 403}
SITE_AND_TEAM = {"other_site": (C, A, W), "other_team": (W,)}
SITE_ONLY = {"other_site": (C, A, W)}
ADMIN_ONLY_200 = {D: 200, C: 403, A: 403, W: 403}
ADMIN_ONLY_201 = {D: 201, C: 403, A: 403, W: 403}


def _matrix_service_account(world: World) -> User:
    existing = User.objects.filter(username="svc-matrix").first()
    if existing is not None:
        return existing
    return service_account_create(username="svc-matrix", roles=["auditor"], site_codes=[world.site.code], actor=None)


MATRIX: dict[str, list[Row]] = {
    "auth-token": [
        Row("POST", "/api/v1/auth/token/", {PUBLIC: 401}, body=lambda w: {"username": "x", "password": "wrong"})
    ],
    "schema": [Row("GET", "/api/v1/schema/", {PUBLIC: 200})],
    "docs": [Row("GET", "/api/v1/docs/", {PUBLIC: 200})],
    "site-list": [Row("GET", "/api/v1/sites/", ALL_200)],
    "site-detail": [Row("GET", "/api/v1/sites/{site}/", ALL_200, outsiders=SITE_ONLY)],
    "patient-list": [
        Row("GET", "/api/v1/patients/", ALL_200),
        Row(
            "POST",
            "/api/v1/patients/",
            {C: 201, D: 201, A: 403, W: 403},
            body=lambda w: {
                "site": w.site.pk,
                "mrn": "NEW-0001",
                "given_name": "Synthetic",
                "family_name": "Newpatient",
                "birth_date": "1955-02-03",
                "dialysis_modality": "HD",
                "dialysis_days": [0, 2, 4],
            },
        ),
    ],
    "patient-detail": [
        Row("GET", "/api/v1/patients/{patient}/", ALL_200, outsiders=SITE_AND_TEAM),
        Row(
            "PATCH",
            "/api/v1/patients/{patient}/",
            {C: 200, D: 200, A: 403, W: 403},
            body=lambda w: {"dialysis_days": [1, 3, 5], "current_therapies": ["cinacalcet"]},
            outsiders=SITE_AND_TEAM,
        ),
    ],
    "pathway-list": [Row("GET", "/api/v1/pathways/", ALL_200)],
    "pathway-detail": [Row("GET", "/api/v1/pathways/{pathway}/", ALL_200)],
    # Version migration: coordinators (their sites' enrollments) and admins.
    "pathway-diff": [
        Row(
            "GET",
            "/api/v1/pathways/{pathway}/diff/",
            MANAGE,
            setup=version_two_loaded,
        )
    ],
    "enrollment-migration-plan": [
        Row(
            "GET",
            "/api/v1/enrollments/{enrollment}/migration-plan/?to_version=2",
            MANAGE,
            setup=version_two_loaded,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "enrollment-migrate": [
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/migrate/",
            MANAGE,
            body=lambda w: {"to_version": 2},
            setup=version_two_loaded,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "enrollment-migrations": [
        Row(
            "POST",
            "/api/v1/enrollments/migrations/",
            MANAGE,
            body=lambda w: {"pathway": "calciphylaxis", "to_version": 2, "dry_run": True},
            setup=version_two_loaded,
        )
    ],
    "enrollment-list": [
        Row("GET", "/api/v1/enrollments/", ALL_200),
        # The wound nurse cannot see the unenrolled patient at all: the reference reads as nonexistent (400).
        Row(
            "POST",
            "/api/v1/enrollments/",
            {C: 201, D: 201, A: 403, W: 400},
            body=lambda w: {"patient": w.spare_patient.pk, "pathway": "calciphylaxis"},
        ),
    ],
    "enrollment-detail": [Row("GET", "/api/v1/enrollments/{enrollment}/", ALL_200, outsiders=SITE_AND_TEAM)],
    "enrollment-hold": [
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/hold/",
            MANAGE,
            body=lambda w: {"reason": "admitted"},
            outsiders=SITE_AND_TEAM,
        )
    ],
    "enrollment-resume": [
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/resume/",
            MANAGE,
            body=lambda w: {},
            setup=enrollment_held,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "enrollment-complete": [
        Row("POST", "/api/v1/enrollments/{enrollment}/complete/", MANAGE, body=lambda w: {}, outsiders=SITE_AND_TEAM)
    ],
    # Releasing a safety hold: coordinators and admins (and the team's nephrologist), not nurses or auditors.
    "enrollment-release-hold": [
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/release-hold/",
            MANAGE,
            body=lambda w: {"template": "sodium-thiosulfate", "reason": "BP recovered"},
            setup=sts_safety_held,
            outsiders=SITE_AND_TEAM,
        )
    ],
    # Recording a suspected case's diagnosis (here: ruled out) is the coordinators' (issue 16).
    "enrollment-diagnosis": [
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/diagnosis/",
            MANAGE,
            body=lambda w: {"diagnosis_status": "refuted", "reason": "vasculitis on biopsy"},
            setup=suspected,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "enrollment-revoke": [
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/revoke/",
            MANAGE,
            body=lambda w: {"reason": "entered in error"},
            outsiders=SITE_AND_TEAM,
        )
    ],
    "enrollment-care-team": [
        Row("GET", "/api/v1/enrollments/{enrollment}/care-team/", ALL_200, outsiders=SITE_AND_TEAM),
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/care-team/",
            {C: 201, D: 201, A: 403, W: 403},
            body=lambda w: {"user": w.users["nephrologist"].pk, "role": "nephrology"},
            outsiders=SITE_AND_TEAM,
        ),
    ],
    "enrollment-care-team-end": [
        Row(
            "POST",
            "/api/v1/enrollments/{enrollment}/care-team/{member}/end/",
            MANAGE,
            body=lambda w: {},
            outsiders=SITE_AND_TEAM,
        )
    ],
    "enrollment-schedule": [
        Row("GET", "/api/v1/enrollments/{enrollment}/schedule/?days=7", ALL_200, outsiders=SITE_AND_TEAM)
    ],
    "task-list": [Row("GET", "/api/v1/tasks/", ALL_200)],
    "task-detail": [Row("GET", "/api/v1/tasks/{task}/", ALL_200, outsiders=SITE_AND_TEAM)],
    "task-events": [Row("GET", "/api/v1/tasks/{task}/events/", ALL_200, outsiders=SITE_AND_TEAM)],
    "task-assign": [
        Row(
            "POST",
            "/api/v1/tasks/{task}/assign/",
            MANAGE,
            body=lambda w: version(w, assignee=w.users[W].pk),
            outsiders=SITE_AND_TEAM,
        )
    ],
    "task-claim": [
        Row(
            "POST",
            "/api/v1/tasks/{task}/claim/",
            {W: 200, D: 200, C: 403, A: 403},
            body=version,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "task-unclaim": [
        Row("POST", "/api/v1/tasks/{task}/unclaim/", WORK, body=version, setup=claimed, outsiders=SITE_AND_TEAM)
    ],
    "task-accept": [
        Row("POST", "/api/v1/tasks/{task}/accept/", WORK, body=version, setup=assigned, outsiders=SITE_AND_TEAM)
    ],
    "task-start": [
        Row("POST", "/api/v1/tasks/{task}/start/", WORK, body=version, setup=assigned, outsiders=SITE_AND_TEAM)
    ],
    "task-complete": [
        Row(
            "POST",
            "/api/v1/tasks/{task}/complete/",
            WORK,
            body=lambda w: version(w, outcome="BWAT-CUA 24, photographed"),
            setup=claimed,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "task-hold": [
        Row(
            "POST",
            "/api/v1/tasks/{task}/hold/",
            WORK_OR_MANAGE,
            body=lambda w: version(w, reason="patient at imaging"),
            setup=claimed,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "task-resume": [
        Row("POST", "/api/v1/tasks/{task}/resume/", WORK_OR_MANAGE, body=version, setup=held, outsiders=SITE_AND_TEAM)
    ],
    "task-cancel": [
        Row(
            "POST",
            "/api/v1/tasks/{task}/cancel/",
            MANAGE,
            body=lambda w: version(w, reason="duplicate"),
            outsiders=SITE_AND_TEAM,
        )
    ],
    "task-fail": [
        Row(
            "POST",
            "/api/v1/tasks/{task}/fail/",
            WORK,
            body=lambda w: version(w, reason="patient refused"),
            setup=claimed,
            outsiders=SITE_AND_TEAM,
        )
    ],
    "queue-list": [Row("GET", "/api/v1/queue/", ALL_200)],
    # Clinical endpoints (pathways/api/clinical.py). POSTs name their enrollment/task in the body; their
    # out-of-scope 404s are tested in tests/clinical/test_api.py.
    "observation-list": [
        Row("GET", "/api/v1/observations/", ALL_200),
        Row(
            "POST",
            "/api/v1/observations/",
            {C: 201, D: 201, W: 201, A: 403},
            body=lambda w: {"enrollment": w.enrollment.pk, "values": [{"code": "bwat_cua", "value": "24"}]},
        ),
    ],
    "flag-list": [Row("GET", "/api/v1/flags/", ALL_200)],
    "medication-change-list": [
        Row("GET", "/api/v1/medication-changes/", ALL_200),
        Row(
            "POST",
            "/api/v1/medication-changes/",
            {C: 201, D: 201, W: 201, A: 403},
            body=lambda w: {"enrollment": w.enrollment.pk, "medication": "iron", "drug_name": "iron sucrose"},
        ),
    ],
    "task-completion-list": [
        Row(
            "POST",
            "/api/v1/task-completions/",
            {W: 201, D: 201, C: 403, A: 403},
            body=lambda w: version(w, task=w.task.pk, values=[{"code": "bwat_cua", "value": "24", "unit": "score"}]),
            setup=claimed,
        )
    ],
    # Reports (pathways/api/reports.py): adherence for coordinators/auditors/admins, the audit log for
    # auditors/admins; both scoped like the task list (tests/reports/).
    "adherence-list": [
        Row("GET", "/api/v1/adherence/?group_by=role", {C: 200, A: 200, D: 200, W: 403}),
        Row("GET", "/api/v1/adherence/?group_by=prong&format=csv", {C: 200, A: 200, D: 200, W: 403}),
    ],
    "audit-event-list": [
        Row("GET", "/api/v1/audit-events/", {A: 200, D: 200, C: 403, W: 403}),
        Row("GET", "/api/v1/audit-events/?format=csv&patient={patient}", {A: 200, D: 200, C: 403, W: 403}),
    ],
    "user-list": [Row("GET", "/api/v1/users/?role=wound_nursing", ALL_200)],
    # Service accounts and API tokens are an admin's (issue 18); an admin sees every site, so no outsiders.
    "service-account-list": [
        Row("GET", "/api/v1/service-accounts/", ADMIN_ONLY_200),
        Row(
            "POST",
            "/api/v1/service-accounts/",
            ADMIN_ONLY_201,
            body=lambda w: {"username": "svc-matrix-new", "roles": ["auditor"], "sites": [w.site.code]},
        ),
    ],
    "api-token-list": [
        Row("GET", "/api/v1/api-tokens/", ADMIN_ONLY_200),
        Row(
            "POST",
            "/api/v1/api-tokens/",
            ADMIN_ONLY_201,
            body=lambda w: {"user": _matrix_service_account(w).pk, "scopes": ["tasks:read"], "days": 30},
        ),
    ],
    "api-token-detail": [Row("GET", "/api/v1/api-tokens/{token}/", ADMIN_ONLY_200)],
    "api-token-rotate": [Row("POST", "/api/v1/api-tokens/{token}/rotate/", ADMIN_ONLY_201, body=lambda w: {})],
    "api-token-revoke": [Row("POST", "/api/v1/api-tokens/{token}/revoke/", ADMIN_ONLY_200, body=lambda w: {})],
    # Wound photographs (pathways/api/photos.py): read by everyone who may see the enrollment, files included.
    # The upload is multipart: this JSON body lacks the file (400 for every role); who may upload, and the
    # 404s for another site's or team's task, are tested in tests/photos/test_api.py.
    "wound-photo-list": [
        Row("GET", "/api/v1/wound-photos/", ALL_200),
        Row("POST", "/api/v1/wound-photos/", {W: 400, D: 400, C: 400, A: 400}, body=lambda w: {"task": w.task.pk}),
    ],
    "wound-photo-detail": [Row("GET", "/api/v1/wound-photos/{photo}/", ALL_200, outsiders=SITE_AND_TEAM)],
    "wound-photo-image": [Row("GET", "/api/v1/wound-photos/{photo}/image/", ALL_200, outsiders=SITE_AND_TEAM)],
    "wound-photo-thumbnail": [Row("GET", "/api/v1/wound-photos/{photo}/thumbnail/", ALL_200, outsiders=SITE_AND_TEAM)],
    "wound-photo-delete": [
        Row(
            "POST",
            "/api/v1/wound-photos/{photo}/delete/",
            {W: 204, D: 204, C: 204, A: 403},
            body=lambda w: {"reason": "wrong lesion"},
            outsiders=SITE_AND_TEAM,
        )
    ],
    "notification-list": [Row("GET", "/api/v1/notifications/", ALL_200)],
    # Notifications are personal: another user's (even an admin asking) is 404.
    "notification-detail": [
        Row("GET", "/api/v1/notifications/{notification}/", ALL_200, outsiders={"other_user": (C, A, D, W)})
    ],
    "notification-read": [
        Row(
            "POST",
            "/api/v1/notifications/{notification}/read/",
            ALL_200,
            body=lambda w: {},
            outsiders={"other_user": (C, A, D, W)},
        )
    ],
}


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


def api_routes() -> dict[str, str]:
    """{route name: pattern} for every route under /api/v1/, read from the live URL configuration."""
    routes = {}
    for route, name in _walk(get_resolver().url_patterns):
        if route.lstrip("^").startswith(API_PREFIX):
            assert name, f"unnamed API route {route}: name it so the access matrix can hold a row for it"
            routes[name] = route
    return routes


def test_every_api_route_has_a_row_and_every_row_a_route() -> None:
    routes = api_routes()
    missing = sorted(set(routes) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(routes))
    assert not missing, f"routes without an access-matrix row: {missing}"
    assert not stale, f"access-matrix rows for routes that no longer exist: {stale}"


def _ids(world: World, target: str, user_key: str | None, path: str | None = None) -> dict[str, Any]:
    """Placeholder values for a target: the in-scope objects, or another site's / another team's. The API token
    is made only for a path that needs one (or when the path is not given)."""
    token = (
        api_token_issue(user=_matrix_service_account(world), scopes=["tasks:read"], actor=None)[0].pk
        if path is None or "{token}" in path
        else None
    )
    if target == "own":
        enrollment, patient, task, member, site = world.enrollment, world.patient, world.task, world.member, world.site
    elif target == "other_site":
        enrollment, patient, task = world.other_site_enrollment, world.other_site_patient, world.other_site_task
        member, site = world.other_site_member, world.other_site
    else:  # other_team (same site) or other_user (someone else's notification)
        enrollment, patient, task = world.other_team_enrollment, world.other_team_patient, world.other_team_task
        member, site = world.other_team_member, world.site
    recipient = world.users[user_key] if (user_key and target == "own") else world.users["nephrologist"]
    notification = notify(recipient, world.task, key=f"{target}-{user_key}")
    return {
        "site": site.pk,
        "patient": patient.pk,
        "pathway": world.pathway.pk,
        "enrollment": enrollment.pk,
        "task": task.pk,
        "member": member.pk,
        "notification": notification.pk,
        "token": token,
        "photo": _photo(world, target),
    }


def _photo(world: World, target: str) -> int:
    """A photograph on the target's wound-assessment task (attached by the admin, who may photograph any)."""
    enrollment = {"own": world.enrollment, "other_site": world.other_site_enrollment}.get(
        target, world.other_team_enrollment
    )
    return photo_on(enrollment, world.users[D]).pk


def _cases() -> Iterator[Any]:
    for name, rows in MATRIX.items():
        for index, row in enumerate(rows):
            for role, status in row.expect.items():
                yield pytest.param(name, index, role, "own", status, id=f"{name}-{row.method}-{role}-own")
            if PUBLIC not in row.expect:
                yield pytest.param(name, index, None, "own", 401, id=f"{name}-{row.method}-anonymous")
            for target, roles in row.outsiders.items():
                for role in roles:
                    yield pytest.param(name, index, role, target, 404, id=f"{name}-{row.method}-{role}-{target}")


@pytest.mark.postgres
@pytest.mark.parametrize(("name", "index", "role", "target", "expected"), list(_cases()))
def test_access_matrix(world: World, name: str, index: int, role: str | None, target: str, expected: int) -> None:
    row = MATRIX[name][index]
    if row.setup and target == "own":
        row.setup(world)
    user_key = None if role in (None, PUBLIC) else role
    path = row.path.format(**_ids(world, target, user_key, row.path))
    assert resolve(path.split("?")[0]).url_name == name, f"row for {name} points at another route: {path}"
    client = client_for(world.users[user_key] if user_key else None)
    body = row.body(world) if row.body else None
    response = client.generic(row.method, path, data=_json(body), content_type="application/json")
    assert response.status_code == expected, (role, target, path, response.content[:400])
    if expected >= 400 and response.get("Content-Type", "").startswith("application/json"):
        assert set(response.json()["error"]) == {"code", "message", "fields"}


def _json(body: dict[str, Any] | None) -> str:
    return json.dumps(body) if body is not None else ""


@pytest.mark.postgres
@pytest.mark.parametrize("role", [C, A, W])
def test_list_endpoints_never_include_another_sites_or_teams_objects(world: World, role: str) -> None:
    client = client_for(world.users[role])
    hidden_tasks = {world.other_site_task.pk} | ({world.other_team_task.pk} if role == W else set())
    hidden_enrollments = {world.other_site_enrollment.pk} | ({world.other_team_enrollment.pk} if role == W else set())
    hidden_patients = {world.other_site_patient.pk, *([world.other_team_patient.pk] if role == W else [])}
    seen_tasks = {t["id"] for t in client.get("/api/v1/tasks/?limit=200").json()["results"]}
    seen_queue = {t["id"] for t in client.get("/api/v1/queue/?limit=200").json()["results"]}
    seen_enrollments = {e["id"] for e in client.get("/api/v1/enrollments/").json()["results"]}
    seen_patients = {p["id"] for p in client.get("/api/v1/patients/").json()["results"]}
    seen_sites = {s["id"] for s in client.get("/api/v1/sites/").json()["results"]}
    assert world.task.pk in seen_tasks
    assert not seen_tasks & hidden_tasks
    assert not seen_queue & hidden_tasks
    assert world.enrollment.pk in seen_enrollments and not seen_enrollments & hidden_enrollments
    assert world.patient.pk in seen_patients and not seen_patients & hidden_patients
    assert seen_sites == {world.site.pk}
    # Filtering by an out-of-scope id finds nothing rather than revealing the object.
    other = client.get(f"/api/v1/tasks/?enrollment={world.other_site_enrollment.pk}").json()
    assert other["count"] == 0


@pytest.mark.postgres
def test_admin_sees_every_site(world: World) -> None:
    client = client_for(world.users[D])
    assert client.get(f"/api/v1/tasks/{world.other_site_task.pk}/").status_code == 200
    assert {s["id"] for s in client.get("/api/v1/sites/").json()["results"]} == {world.site.pk, world.other_site.pk}


@pytest.mark.postgres
def test_the_audit_log_never_shows_an_auditor_another_sites_events(world: World) -> None:
    """The audit-events route across sites (issue 12, section 6): multi-site staff search and read the other
    site's patient; the auditor of this site sees none of it (not even the searched MRN), the other site's does."""
    both = UserFactory(username="both-sites", roles=[C], sites=[world.site, world.other_site])
    other_auditor = UserFactory(username="nyc-audit", roles=[A], sites=[world.other_site])
    staff_client = client_for(both)
    mrn = world.other_site_patient.mrn
    searches = [
        f"mrn={mrn}",  # matches the other site's patient only
        f"mrn=NO-SUCH-MRN&site={world.other_site.pk}",  # matches nothing; searched the other site only
    ]
    for query in searches:
        assert staff_client.get(f"/api/v1/patients/?{query}").status_code == 200
    assert staff_client.get(f"/api/v1/patients/{world.other_site_patient.pk}/").status_code == 200
    assert staff_client.get(f"/api/v1/tasks/?enrollment={world.other_site_enrollment.pk}").status_code == 200
    own_search = f"mrn={world.patient.mrn}"
    assert staff_client.get(f"/api/v1/patients/?{own_search}").status_code == 200

    def seen_by(auditor: Any) -> list[dict[str, Any]]:
        response = client_for(auditor).get(f"/api/v1/audit-events/?actor={both.pk}&limit=200")
        assert response.status_code == 200
        return list(response.json()["results"])

    here = seen_by(world.users[A])
    assert [e["query"] for e in here] == [own_search]
    assert not any(mrn in json.dumps(e) for e in here)
    there = seen_by(other_auditor)
    assert sorted(e["query"] for e in there if e["query"]) == sorted(
        [*searches, f"enrollment={world.other_site_enrollment.pk}"]
    )
    assert len(there) == 4
    csv = client_for(world.users[A]).get(f"/api/v1/audit-events/?actor={both.pk}&format=csv")
    assert csv.status_code == 200 and mrn not in csv.content.decode()
