"""Version migration through the API: the diff, one enrollment's plan and move, and many, with bad input."""

from __future__ import annotations

import pytest

from pathways.choices import EnrollmentEventKind
from pathways.models import Enrollment, EnrollmentEvent
from pathways.services.enrollment import enrollment_hold
from tests.api.conftest import World, client_for
from tests.versions import ADDED, REMOVED, REPLANNED, RULE_CHANGED, load_version_two

BULK = "/api/v1/enrollments/migrations/"


@pytest.fixture
def v2_world(world: World) -> World:
    world.v2 = load_version_two()  # type: ignore[attr-defined]
    return world


def _diff_url(world: World) -> str:
    return f"/api/v1/pathways/{world.v2.pk}/diff/"  # type: ignore[attr-defined]


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:400]
    body = response.json()["error"]
    assert set(body) == {"code", "message", "fields"}
    return body


def test_the_diff_endpoint_answers_the_changes_by_code(v2_world: World) -> None:
    client = client_for(v2_world.users["coordinator"])
    response = client.get(_diff_url(v2_world))
    assert response.status_code == 200
    body = response.json()
    assert client.get(_diff_url(v2_world), {"from_version": 1}).json() == body
    assert (body["pathway"], body["from_version"], body["to_version"]) == ("calciphylaxis", 1, 2)
    assert body["task_templates"]["added"] == [ADDED]
    assert body["task_templates"]["removed"] == [REMOVED]
    assert body["task_templates"]["changed"] == [
        {
            "code": REPLANNED,
            "fields": {
                "recurrence": {
                    "old": {"kind": "interval", "every_days": 7},
                    "new": {"kind": "interval", "every_days": 3},
                }
            },
        }
    ]
    assert [c["code"] for c in body["rules"]["changed"]] == [RULE_CHANGED]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from_version": "one"}, "from_version"),
        ({"from_version": 0}, "from_version"),
        ({"from_version": 99}, "from_version"),
        ({"from_version": 2}, "from_version"),
        ({"from_version": 1, "to_version": 2}, "to_version"),
    ],
)
def test_bad_diff_requests_are_400_naming_the_field(v2_world: World, params: dict, field: str) -> None:
    response = client_for(v2_world.users["admin"]).get(_diff_url(v2_world), params)
    assert field in _error(response, 400)["fields"]


def test_the_first_versions_diff_lists_everything_as_added(world: World) -> None:
    body = client_for(world.users["admin"]).get(f"/api/v1/pathways/{world.pathway.pk}/diff/").json()
    assert body["from_version"] == 0 and "team-huddle" in body["task_templates"]["added"]
    assert body["task_templates"]["removed"] == body["task_templates"]["changed"] == []


def test_the_plan_is_what_the_move_applies_and_a_second_move_is_409(v2_world: World) -> None:
    client = client_for(v2_world.users["coordinator"])
    enrollment = v2_world.enrollment
    plan = client.get(f"/api/v1/enrollments/{enrollment.pk}/migration-plan/")  # to the active version, v2
    assert plan.status_code == 200
    planned = plan.json()
    assert (planned["from_version"], planned["to_version"]) == (1, 2)
    assert [t["template"] for t in planned["tasks_cancelled"]] == [REMOVED]
    assert [s["template"] for s in planned["schedules_started"]] == [ADDED]

    moved = client.post(f"/api/v1/enrollments/{enrollment.pk}/migrate/", {"to_version": 2}, format="json")
    assert moved.status_code == 200
    applied = moved.json()
    # The dry run was read a moment earlier: the same changes, times aside.
    for key in ("tasks_cancelled", "schedules_ended", "open_tasks_kept", "from_version", "to_version"):
        assert applied[key] == planned[key]
    assert [s["template"] for s in applied["schedules_started"]] == [ADDED]
    event = EnrollmentEvent.objects.get(enrollment=enrollment, kind=EnrollmentEventKind.MIGRATED)
    assert event.data["plan"] == applied

    again = client.post(f"/api/v1/enrollments/{enrollment.pk}/migrate/", {"to_version": 2}, format="json")
    assert _error(again, 409)["code"] == "already_on_version"
    nothing = client.get(f"/api/v1/enrollments/{enrollment.pk}/migration-plan/").json()
    assert (nothing["from_version"], nothing["to_version"], nothing["tasks_created"]) == (2, 2, [])


def test_moving_an_on_hold_enrollment_needs_include_on_hold(v2_world: World) -> None:
    client = client_for(v2_world.users["coordinator"])
    enrollment = v2_world.enrollment
    enrollment_hold(enrollment_id=enrollment.pk, actor=None, reason="away")
    url = f"/api/v1/enrollments/{enrollment.pk}/migrate/"
    assert "on hold" in _error(client.post(url, {"to_version": 2}, format="json"), 409)["message"]
    assert client.post(url, {"to_version": 2, "include_on_hold": True}, format="json").status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"to_version": "2.5"}, {"to_version": 0}, {"to_version": 99}, {"to_version": 2, "status": "active"}],
)
def test_bad_move_requests_are_400_and_change_nothing(v2_world: World, body: dict) -> None:
    client = client_for(v2_world.users["coordinator"])
    enrollment = v2_world.enrollment
    response = client.post(f"/api/v1/enrollments/{enrollment.pk}/migrate/", body, format="json")
    _error(response, 400)
    assert Enrollment.objects.get(pk=enrollment.pk).template.version == 1


def test_a_migration_of_many_runs_in_chunks_and_a_dry_run_changes_nothing(v2_world: World) -> None:
    client = client_for(v2_world.users["coordinator"])
    mine = [v2_world.enrollment.pk, v2_world.other_team_enrollment.pk]
    dry = client.post(BULK, {"pathway": "calciphylaxis", "to_version": 2, "dry_run": True}, format="json")
    assert dry.status_code == 200
    assert (dry.json()["selected"], dry.json()["migrated"], dry.json()["dry_run"]) == (2, 0, True)
    assert sorted(p["enrollment"] for p in dry.json()["plans"]) == sorted(mine)
    assert not EnrollmentEvent.objects.filter(kind=EnrollmentEventKind.MIGRATED).exists()

    first = client.post(BULK, {"pathway": "calciphylaxis", "to_version": 2, "limit": 1}, format="json").json()
    assert (first["selected"], first["migrated"], first["remaining"]) == (2, 1, 1)
    second = client.post(BULK, {"pathway": "calciphylaxis", "to_version": 2, "limit": 1}, format="json").json()
    assert (second["selected"], second["migrated"], second["remaining"]) == (1, 1, 0)
    versions = dict(Enrollment.objects.values_list("pk", "template__version"))
    # The other site's enrollment is outside this coordinator's scope: untouched.
    assert versions == {mine[0]: 2, mine[1]: 2, v2_world.other_site_enrollment.pk: 1}


@pytest.mark.parametrize(
    "body",
    [
        {"pathway": "calciphylaxis"},
        {"pathway": "calciphylaxis", "to_version": 9},
        {"pathway": "calciphylaxis", "to_version": 2, "limit": 501},
        {"pathway": "calciphylaxis", "to_version": 2, "site": 10**6},
        {"pathway": "calciphylaxis", "to_version": 2, "everything": True},
    ],
)
def test_bad_migration_of_many_requests_are_400(v2_world: World, body: dict) -> None:
    response = client_for(v2_world.users["admin"]).post(BULK, body, format="json")
    _error(response, 400)
    assert not EnrollmentEvent.objects.filter(kind=EnrollmentEventKind.MIGRATED).exists()
