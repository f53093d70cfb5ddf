"""Compiled list pages (pathways.api.compiled, issue 15): the task list and the queue keep their compiled SQL per
user and request, and a kept page answers exactly what a freshly built one would, whatever changed in between."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from pathways.api import compiled
from pathways.api.serializers import TaskSerializer
from pathways.choices import Role
from pathways.models import Task, User
from pathways.selectors.kept import now_positions
from pathways.selectors.tasks import task_list, task_queue_for_user
from pathways.services.enrollment import care_team_end
from tests.api.conftest import World, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_compiled_caches")]


@pytest.fixture
def compiles() -> Any:
    with mock.patch.object(compiled, "compile_page", wraps=compiled.compile_page) as spy:
        yield spy


def _ids(user: User, url: str) -> list[int]:
    # A fresh read of the user, as each real request authenticates anew.
    response = client_for(User.objects.get(pk=user.pk)).get(url)
    assert response.status_code == 200, response.content[:300]
    return [row["id"] for row in response.json()["results"]]


def test_a_repeated_page_runs_its_kept_sql_and_answers_the_same(world: World, compiles: mock.Mock) -> None:
    nurse = world.users["wound_nurse"]
    client = client_for(nurse)
    first = client.get("/api/v1/queue/").json()
    with CaptureQueriesContext(connection) as queries:
        second = client.get("/api/v1/queue/").json()
    assert compiles.call_count == 1
    assert second == first and world.task.pk in [row["id"] for row in first["results"]]
    task_reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "pathways_task"."id"')]
    assert len(task_reads) == 1  # the page itself; the list fits, so no COUNT


@pytest.mark.parametrize(
    ("user", "url", "build"),
    [
        ("coordinator", "/api/v1/tasks/", lambda u: task_list(user=u)),
        ("coordinator", "/api/v1/tasks/?limit=3&offset=2", lambda u: task_list(user=u)[2:5]),
        ("wound_nurse", "/api/v1/tasks/", lambda u: task_list(user=u)),
        ("wound_nurse", "/api/v1/queue/", lambda u: task_queue_for_user(user=u)),
        (
            "nephrologist",
            "/api/v1/queue/?role=nephrology",
            lambda u: task_queue_for_user(user=u).filter(role="nephrology"),
        ),
        (
            "admin",
            "/api/v1/tasks/?status=requested&status=accepted",
            lambda u: task_list(user=u).filter(status__in=["requested", "accepted"]),
        ),
    ],
)
def test_a_kept_page_serializes_as_the_model_instances_would(world: World, user: str, url: str, build: Any) -> None:
    person = world.users[user]
    client = client_for(person)
    client.get(url)  # compiled and kept
    kept = client.get(url).json()["results"]
    expected = TaskSerializer(list(build(person)[:50]), many=True).data
    assert kept == expected and kept


def test_an_ended_membership_empties_the_pool_on_the_next_request(world: World, compiles: mock.Mock) -> None:
    nurse = world.users["wound_nurse"]
    assert world.task.pk in _ids(nurse, "/api/v1/queue/")
    care_team_end(membership_id=world.member.pk, actor=world.users["coordinator"])
    assert world.task.pk not in _ids(nurse, "/api/v1/queue/")
    assert world.task.pk not in _ids(nurse, "/api/v1/tasks/")
    assert compiles.call_count == 2  # one per page: the queue's kept SQL read the membership afresh


def test_a_site_taken_away_hides_its_tasks_on_the_next_request(world: World, compiles: mock.Mock) -> None:
    coordinator = world.users["coordinator"]
    before = _ids(coordinator, "/api/v1/tasks/?limit=200")
    assert world.task.pk in before
    coordinator.sites.remove(world.site)
    assert _ids(coordinator, "/api/v1/tasks/?limit=200") == []
    assert compiles.call_count == 1


def test_a_changed_role_compiles_afresh(world: World, compiles: mock.Mock) -> None:
    nurse = world.users["wound_nurse"]
    assert world.task.pk in _ids(nurse, "/api/v1/tasks/?pool=true")
    User.objects.filter(pk=nurse.pk).update(roles=[Role.NEPHROLOGY])
    assert world.task.pk not in _ids(nurse, "/api/v1/tasks/?pool=true")
    assert compiles.call_count == 2


def test_now_is_bound_afresh_on_every_request(world: World, compiles: mock.Mock) -> None:
    coordinator = world.users["coordinator"]
    due = world.task.due_at
    with time_machine.travel(due - dt.timedelta(minutes=5), tick=False):
        assert world.task.pk not in _ids(coordinator, "/api/v1/tasks/?overdue=true&limit=200")
    with time_machine.travel(due + dt.timedelta(minutes=5), tick=False):
        assert world.task.pk in _ids(coordinator, "/api/v1/tasks/?overdue=true&limit=200")
    assert compiles.call_count == 1
    (kept,) = compiled.pages.items.values()
    assert kept.cacheable and kept.page.now_at


def test_a_page_with_a_client_given_time_is_not_kept(world: World, compiles: mock.Mock) -> None:
    coordinator = world.users["coordinator"]
    url = (
        f"/api/v1/tasks/?due_before={(world.task.due_at + dt.timedelta(seconds=1)).isoformat().replace('+00:00', 'Z')}"
    )
    assert world.task.pk in _ids(coordinator, url)
    assert world.task.pk in _ids(coordinator, url)
    assert compiles.call_count == 2 and len(compiled.pages) == 0


def test_a_build_that_read_the_database_is_not_kept(world: World, compiles: mock.Mock) -> None:
    nurse = world.users["wound_nurse"]
    real = task_queue_for_user

    def reading(*, user: User, **kwargs: Any) -> Any:
        Task.objects.exists()  # a selector that looks something up while building
        return real(user=user, **kwargs)

    with mock.patch("pathways.api.views.task_queue_for_user", reading):
        assert world.task.pk in _ids(nurse, "/api/v1/queue/")
        assert world.task.pk in _ids(nurse, "/api/v1/queue/")
    assert compiles.call_count == 2 and len(compiled.pages) == 0


def test_only_plain_constants_and_now_are_kept() -> None:
    started = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
    finished = started + dt.timedelta(milliseconds=3)
    now_at, constant = now_positions((1, "x", started + dt.timedelta(milliseconds=1), None), started, finished)
    assert (now_at, constant) == ((2,), True)
    for clock in (started.date(), started - dt.timedelta(days=1), dt.timedelta(hours=1), [started.date()]):
        assert now_positions((1, clock), started, finished)[1] is False


def test_invalid_filters_are_a_400_and_keep_nothing(world: World) -> None:
    response = client_for(world.users["coordinator"]).get("/api/v1/tasks/?overdue=maybe")
    assert response.status_code == 400
    response = client_for(world.users["coordinator"]).get("/api/v1/tasks/?limit=999")
    assert response.status_code == 400
    assert len(compiled.pages) == 0


def test_a_changed_setting_empties_the_cache(world: World) -> None:
    client_for(world.users["coordinator"]).get("/api/v1/tasks/")
    assert len(compiled.pages) == 1
    with override_settings(PAGE_SIZE_UNUSED=1):
        assert len(compiled.pages) == 0


def test_a_kept_action_lookup_reads_the_care_team_afresh(world: World) -> None:
    # The claim's locked lookup in scope is compiled once per user (KeptLookupMixin); the membership it checks
    # is read when it runs, so an ended membership makes the very next claim a 404.
    nurse = world.users["wound_nurse"]
    task = world.task

    def post(action: str) -> Any:
        version = Task.objects.get(pk=task.pk).version
        client = client_for(User.objects.get(pk=nurse.pk))
        return client.post(f"/api/v1/tasks/{task.pk}/{action}/", {"version": version}, format="json")

    assert post("claim").status_code == 200
    assert post("unclaim").status_code == 200
    assert len(compiled.lookups) == 2  # one per action
    care_team_end(membership_id=world.member.pk, actor=world.users["coordinator"])
    assert post("claim").status_code == 404
    assert Task.objects.get(pk=task.pk).assignee_id is None


def test_a_kept_action_lookup_answers_404_for_ids_out_of_scope(world: World) -> None:
    nurse = world.users["wound_nurse"]
    client = client_for(nurse)
    for pk in (world.other_site_task.pk, world.other_team_task.pk, 2**62, 0):
        response = client.post(f"/api/v1/tasks/{pk}/claim/", {"version": 1}, format="json")
        assert response.status_code == 404, pk
