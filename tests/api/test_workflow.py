"""The team's day through the API: a coordinator enrols and builds the care team, a wound nurse works the
queue to completion, an auditor reads but cannot write."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from pathways.choices import Role
from pathways.models import Notification, Task
from tests.api.conftest import World, client_for, notify
from tests.factories import UserFactory


@pytest.mark.postgres
def test_coordinator_enrols_builds_team_and_assigns_then_nurse_completes(world: World) -> None:
    coordinator = client_for(world.users["coordinator"])
    nurse_user = world.users["wound_nurse"]
    nurse = client_for(nurse_user)

    patient = coordinator.post(
        "/api/v1/patients/",
        {
            "site": world.site.pk,
            "mrn": "WALK-0001",
            "given_name": "Synthetic",
            "family_name": "Walkthrough",
            "birth_date": "1958-06-01",
            "dialysis_modality": "HD",
            "dialysis_days": [0, 2, 4],
            "dialysis_session_time": "13:00",
        },
        format="json",
    )
    assert patient.status_code == 201, patient.content
    found = coordinator.get("/api/v1/patients/?mrn=WALK-0001").json()
    assert [p["id"] for p in found["results"]] == [patient.json()["id"]]

    enrolled = coordinator.post(
        "/api/v1/enrollments/", {"patient": patient.json()["id"], "pathway": "calciphylaxis"}, format="json"
    )
    assert enrolled.status_code == 201, enrolled.content
    enrollment = enrolled.json()
    assert enrollment["status"] == "active" and enrollment["pathway_version"] == world.pathway.version
    again = coordinator.post(
        "/api/v1/enrollments/", {"patient": patient.json()["id"], "pathway": "calciphylaxis"}, format="json"
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_enrolled"

    # Before joining the team the nurse cannot see the enrollment at all.
    assert nurse.get(f"/api/v1/enrollments/{enrollment['id']}/").status_code == 404
    added = coordinator.post(
        f"/api/v1/enrollments/{enrollment['id']}/care-team/",
        {"user": nurse_user.pk, "role": "wound_nursing"},
        format="json",
    )
    assert added.status_code == 201, added.content
    team = coordinator.get(f"/api/v1/enrollments/{enrollment['id']}/care-team/").json()
    assert [(m["username"], m["role"]) for m in team] == [(nurse_user.username, "wound_nursing")]

    tasks = coordinator.get(f"/api/v1/tasks/?enrollment={enrollment['id']}&role=wound_nursing&pool=true").json()
    dressing = next(t for t in tasks["results"] if t["template"] == "dressing-change")
    assigned = coordinator.post(
        f"/api/v1/tasks/{dressing['id']}/assign/", {"version": dressing["version"], "assignee": nurse_user.pk}
    )
    assert assigned.status_code == 200, assigned.content
    assert assigned.json()["assignee"] == nurse_user.pk

    queue = nurse.get("/api/v1/queue/").json()["results"]
    assert dressing["id"] in {t["id"] for t in queue}
    mine = nurse.get("/api/v1/tasks/?assignee=me").json()["results"]
    assert [t["id"] for t in mine] == [dressing["id"]]

    task = assigned.json()
    for step, body in (
        ("accept", {}),
        ("start", {}),
        ("complete", {"outcome": "Dressing changed; wound bed clean, no purulence"}),
    ):
        response = nurse.post(f"/api/v1/tasks/{task['id']}/{step}/", {"version": task["version"], **body})
        assert response.status_code == 200, (step, response.content)
        task = response.json()
    assert task["status"] == "completed" and task["completed_by"] == nurse_user.pk
    assert task["id"] not in {t["id"] for t in nurse.get("/api/v1/queue/").json()["results"]}
    history = nurse.get(f"/api/v1/tasks/{task['id']}/events/").json()
    assert [e["to_status"] for e in history if e["kind"] == "transitioned"][-3:] == [
        "accepted",
        "in-progress",
        "completed",
    ]


@pytest.mark.postgres
def test_auditor_reads_everything_at_the_site_but_cannot_write(world: World) -> None:
    auditor = client_for(world.users["auditor"])
    task = Task.objects.get(pk=world.task.pk)
    for url in ("/api/v1/tasks/", "/api/v1/enrollments/", "/api/v1/patients/", f"/api/v1/tasks/{task.pk}/events/"):
        assert auditor.get(url).status_code == 200
    for url, body in (
        (f"/api/v1/tasks/{task.pk}/claim/", {"version": task.version}),
        (f"/api/v1/tasks/{task.pk}/cancel/", {"version": task.version, "reason": "x"}),
        (f"/api/v1/enrollments/{world.enrollment.pk}/hold/", {"reason": "x"}),
        ("/api/v1/enrollments/", {"patient": world.spare_patient.pk, "pathway": "calciphylaxis"}),
    ):
        response = auditor.post(url, body, format="json")
        assert response.status_code == 403, (url, response.content)
        assert response.json()["error"]["code"] == "not_permitted"
    assert Task.objects.get(pk=task.pk).version == task.version


@pytest.mark.postgres
def test_queue_is_mine_plus_my_role_pools_on_my_teams_open_only_overdue_first(world: World) -> None:
    nurse_user = world.users["wound_nurse"]
    nurse = client_for(nurse_user)
    enrollment_tasks = Task.objects.filter(enrollment=world.enrollment)
    expected = set(enrollment_tasks.filter(role=Role.WOUND_NURSING).values_list("pk", flat=True))
    # Another role's pool on the same team is not the nurse's work.
    assert enrollment_tasks.exclude(role=Role.WOUND_NURSING).exists()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=2), tick=False):
        queue = nurse.get("/api/v1/queue/").json()["results"]
    assert {t["id"] for t in queue} == expected
    assert all(t["is_overdue"] for t in queue)

    # Claiming keeps it in the queue (now assigned to me); another nurse's assignment removes it.
    dressing = enrollment_tasks.get(template__code="dressing-change")
    other = UserFactory(roles=[Role.WOUND_NURSING], sites=[world.site])
    coordinator = client_for(world.users["coordinator"])
    coordinator.post(f"/api/v1/tasks/{dressing.pk}/assign/", {"version": dressing.version, "assignee": other.pk})
    queue = nurse.get("/api/v1/queue/").json()["results"]
    assert {t["id"] for t in queue} == expected - {dressing.pk}

    # Overdue first: make one task overdue and it leads the queue, ahead of higher priorities.
    wound = Task.objects.get(pk=world.task.pk)
    Task.objects.filter(pk=wound.pk).update(
        available_at=wound.available_at - dt.timedelta(days=3), due_at=wound.available_at - dt.timedelta(days=2)
    )
    queue = nurse.get("/api/v1/queue/").json()["results"]
    assert queue[0]["id"] == wound.pk and queue[0]["is_overdue"]


@pytest.mark.postgres
def test_default_task_order_is_priority_then_due_time(world: World) -> None:
    tasks = Task.objects.filter(enrollment=world.enrollment).order_by("pk")
    first, second, third = tasks[0], tasks[1], tasks[2]
    Task.objects.filter(pk=first.pk).update(priority="routine")
    Task.objects.filter(pk=second.pk).update(priority="stat")
    Task.objects.filter(pk=third.pk).update(priority="asap")
    results = client_for(world.users["coordinator"]).get(f"/api/v1/tasks/?enrollment={world.enrollment.pk}")
    ids = [t["id"] for t in results.json()["results"]]
    assert ids[:2] == [second.pk, third.pk]
    priorities = [t["priority"] for t in results.json()["results"]]
    rank = {"stat": 3, "asap": 2, "urgent": 1, "routine": 0}
    assert [rank[p] for p in priorities] == sorted((rank[p] for p in priorities), reverse=True)


@pytest.mark.postgres
def test_task_filters(world: World) -> None:
    client = client_for(world.users["coordinator"])
    base = f"/api/v1/tasks/?enrollment={world.enrollment.pk}"
    every = client.get(base).json()["count"]
    wound = client.get(f"{base}&role=wound_nursing").json()["results"]
    assert wound and all(t["role"] == "wound_nursing" for t in wound)
    statuses = client.get(f"{base}&status=requested&status=accepted").json()["count"]
    assert statuses == every
    assert client.get(f"{base}&status=completed").json()["count"] == 0
    assert client.get(f"{base}&overdue=true").json()["count"] == 0
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat().replace("+00:00", "Z")
    assert client.get(f"{base}&due_before={later}").json()["count"] == every
    assert client.get(f"{base}&due_after={later}").json()["count"] == 0
    available = client.get(f"{base}&available=true").json()["results"]
    assert all(t["blocked_by"] == [] for t in available)
    assert client.get(f"/api/v1/tasks/?patient={world.patient.pk}").json()["count"] == every


@pytest.mark.postgres
def test_enrollment_schedule_shows_what_comes_due(world: World) -> None:
    client = client_for(world.users["wound_nurse"])
    week = client.get(f"/api/v1/enrollments/{world.enrollment.pk}/schedule/?days=7").json()
    assert any(item["task"] == world.task.pk for item in week)
    future = [item for item in week if item["task"] is None]
    assert future, "recurring work in the next week should be previewed"
    starts = [dt.datetime.fromisoformat(item["available_at"]) for item in week]
    assert starts == sorted(starts)
    assert all(dt.datetime.fromisoformat(item["due_at"]) >= start for item, start in zip(week, starts, strict=True))
    day = client.get(f"/api/v1/enrollments/{world.enrollment.pk}/schedule/?days=1").json()
    assert len(day) < len(week)


@pytest.mark.postgres
def test_notifications_are_mine_and_can_be_marked_read_once(world: World) -> None:
    nurse_user = world.users["wound_nurse"]
    mine = notify(nurse_user, world.task, key="a")
    notify(world.users["coordinator"], world.task, key="b")
    nurse = client_for(nurse_user)
    listed = nurse.get("/api/v1/notifications/?unread=true").json()["results"]
    assert [n["id"] for n in listed] == [mine.pk]
    first = nurse.post(f"/api/v1/notifications/{mine.pk}/read/").json()["read_at"]
    assert first is not None
    assert nurse.post(f"/api/v1/notifications/{mine.pk}/read/").json()["read_at"] == first
    assert nurse.get("/api/v1/notifications/?unread=true").json()["count"] == 0
    assert Notification.objects.get(pk=mine.pk).read_at is not None
