"""Bad input is a 400 in the one error shape, and nothing changes."""

from __future__ import annotations

import pytest

from pathways.models import Enrollment, Patient, Task, TaskEvent
from tests.api.conftest import World, client_for


def _assert_error(response, status: int = 400, *fields: str) -> dict:
    assert response.status_code == status, response.content[:400]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["message"]
    for name in fields:
        assert name in error["fields"], error
    return error


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("assigne=me", "assigne"),  # a typo must not silently return everything
        ("status=bogus", "status"),
        ("priority=whenever", "priority"),
        ("prong=feet", "prong"),
        ("due_before=yesterday", "due_before"),
        ("due_after=2026-13-45T00:00:00Z", "due_after"),
        ("pool=maybe", "pool"),
        ("overdue=yes-please", "overdue"),
        ("assignee=someone", "assignee"),
        ("enrollment=abc", "enrollment"),
        ("limit=1000", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_bad_task_list_queries_are_rejected(world: World, query: str, field: str) -> None:
    response = client_for(world.users["coordinator"]).get(f"/api/v1/tasks/?{query}")
    _assert_error(response, 400, field)


@pytest.mark.postgres
def test_unknown_query_parameter_on_a_detail_route_is_rejected(world: World) -> None:
    response = client_for(world.users["coordinator"]).get(f"/api/v1/tasks/{world.task.pk}/?expand=all")
    _assert_error(response, 400, "expand")


@pytest.mark.postgres
@pytest.mark.parametrize("days", ["0", "400", "soon"])
def test_schedule_days_out_of_range_is_rejected(world: World, days: str) -> None:
    response = client_for(world.users["coordinator"]).get(
        f"/api/v1/enrollments/{world.enrollment.pk}/schedule/?days={days}"
    )
    _assert_error(response, 400, "days")


def _task_state(task_id: int) -> tuple:
    task = Task.objects.get(pk=task_id)
    return task.status, task.assignee_id, task.version, TaskEvent.objects.filter(task=task).count()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("claim", {}, "version"),
        ("claim", {"version": "abc"}, "version"),
        ("claim", {"version": 1, "status": "completed"}, "status"),  # no mass assignment
        ("claim", {"version": 1, "assignee": 1}, "assignee"),
        ("assign", {"version": 1, "assignee": 999999}, "assignee"),
        ("assign", {"version": 1, "assignee": "me"}, "assignee"),
        ("hold", {"version": 1}, "reason"),
        ("hold", {"version": 1, "reason": "x", "until": "next tuesday"}, "until"),
        ("cancel", {"version": 1}, "reason"),
        ("complete", {"version": 1}, "outcome"),
    ],
)
def test_bad_task_action_bodies_are_rejected_and_change_nothing(
    world: World, action: str, body: dict, field: str
) -> None:
    before = _task_state(world.task.pk)
    response = client_for(world.users["coordinator"]).post(
        f"/api/v1/tasks/{world.task.pk}/{action}/", body, format="json"
    )
    _assert_error(response, 400, field)
    assert _task_state(world.task.pk) == before


@pytest.mark.postgres
def test_a_non_object_body_is_a_400(world: World) -> None:
    client = client_for(world.users["coordinator"])
    response = client.post(f"/api/v1/tasks/{world.task.pk}/assign/", "[1, 2]", content_type="application/json")
    _assert_error(response, 400)
    response = client.post(f"/api/v1/tasks/{world.task.pk}/assign/", "{not json", content_type="application/json")
    _assert_error(response, 400)


@pytest.mark.postgres
def test_stale_version_is_a_409_and_changes_nothing(world: World) -> None:
    client = client_for(world.users["wound_nurse"])
    before = _task_state(world.task.pk)
    response = client.post(f"/api/v1/tasks/{world.task.pk}/claim/", {"version": before[2] + 5}, format="json")
    assert _assert_error(response, 409)["code"] == "stale_version"
    assert _task_state(world.task.pk) == before


@pytest.mark.postgres
def test_illegal_transition_is_a_409_naming_both_states(world: World) -> None:
    client = client_for(world.users["admin"])
    task = Task.objects.get(pk=world.task.pk)
    response = client.post(
        f"/api/v1/tasks/{task.pk}/complete/", {"version": task.version, "outcome": "x"}, format="json"
    )
    error = _assert_error(response, 409)
    assert error["code"] == "illegal_transition"
    assert "requested" in error["message"] and "completed" in error["message"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"patient": "one", "pathway": "calciphylaxis"}, "patient"),
        ({"pathway": "calciphylaxis"}, "patient"),
        ({"patient": 0, "pathway": "calciphylaxis", "status": "completed"}, "status"),
        ({"patient": 0, "pathway": "calciphylaxis", "enrolled_at": "2020-01-01T00:00:00Z"}, "enrolled_at"),
        ({"patient": 0, "pathway": "no-such-pathway"}, "pathway"),
    ],
)
def test_bad_enrollment_bodies_are_rejected_and_create_nothing(world: World, body: dict, field: str) -> None:
    body = {k: (world.spare_patient.pk if v == 0 else v) for k, v in body.items()}
    before = Enrollment.objects.count()
    response = client_for(world.users["coordinator"]).post("/api/v1/enrollments/", body, format="json")
    _assert_error(response, 400, field)
    assert Enrollment.objects.count() == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": 99}, "id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"sex": "robot"}, "sex"),
        ({"dialysis_days": [7]}, "dialysis_days.0"),
        ({"risk_medications": ["aspirin"]}, "risk_medications.0"),
        ({"birth_date": "03/02/1955"}, "birth_date"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
    ],
)
def test_bad_patient_bodies_are_rejected_and_create_nothing(world: World, change: dict, field: str) -> None:
    body = {
        "site": world.site.pk,
        "mrn": "NEW-0002",
        "given_name": "Synthetic",
        "family_name": "Person",
        "birth_date": "1955-02-03",
        "dialysis_modality": "HD",
        "dialysis_days": [0, 2, 4],
        **change,
    }
    before = Patient.objects.count()
    response = client_for(world.users["coordinator"]).post("/api/v1/patients/", body, format="json")
    _assert_error(response, 400, field)
    assert Patient.objects.count() == before


@pytest.mark.postgres
def test_duplicate_mrn_at_a_site_is_a_409(world: World) -> None:
    body = {
        "site": world.site.pk,
        "mrn": world.patient.mrn,
        "given_name": "Synthetic",
        "family_name": "Twin",
        "birth_date": "1955-02-03",
        "dialysis_modality": "PD",
    }
    response = client_for(world.users["coordinator"]).post("/api/v1/patients/", body, format="json")
    assert _assert_error(response, 409, "mrn")["code"] == "conflict"


@pytest.mark.postgres
def test_patch_and_delete_are_not_offered(world: World) -> None:
    client = client_for(world.users["admin"])
    for url in (f"/api/v1/tasks/{world.task.pk}/", f"/api/v1/enrollments/{world.enrollment.pk}/"):
        assert client.patch(url, {"status": "completed"}, format="json").status_code == 405
        assert client.delete(url).status_code == 405
    assert Task.objects.get(pk=world.task.pk).status == "requested"
