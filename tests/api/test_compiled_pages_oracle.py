"""Compiled pages and kept lookups (issue 15) answer exactly as the ORM path they replace: DRF's ListModelMixin.list
and get_object, compared response for response, for every kind of user, after every kind of change (care team,
claim, sites, roles, activity, time). Written by a reviewer trying to break them."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
import time_machine
from rest_framework import mixins

from pathways.api import compiled
from pathways.api.base import AuditDetailsMixin
from pathways.choices import Role
from pathways.models import Task, User
from pathways.services import tasks as task_services
from pathways.services.enrollment import care_team_add, care_team_end
from tests.api.conftest import World, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_compiled_caches")]


@contextmanager
def orm_path() -> Any:
    """The pre-change path: DRF's ListModelMixin.list and DRF's get_object."""

    def orm_list(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        return mixins.ListModelMixin.list(self, request, *args, **kwargs)

    def orm_find(self: Any) -> Any:
        return AuditDetailsMixin.find_object(self)

    with (
        mock.patch.object(compiled.CompiledListMixin, "list", orm_list),
        mock.patch.object(compiled.KeptLookupMixin, "find_object", orm_find),
    ):
        yield


def get(user: User, url: str) -> tuple[int, Any]:
    response = client_for(User.objects.get(pk=user.pk)).get(url)
    return response.status_code, (response.json() if response.status_code < 500 else response.content[:200])


def urls(world: World) -> list[str]:
    p = world.patient.pk
    base = [
        "",
        "?limit=1",
        "?limit=2&offset=3",
        "?offset=500",
        "?count=false",
        "?count=false&limit=1&offset=2",
        "?pool=true",
        "?pool=false",
        "?assignee=me",
        "?available=true",
        "?overdue=true",
        f"?patient={p}",
        f"?patient={p}&patient={world.other_team_patient.pk}",
        "?status=requested&status=accepted",
        "?role=wound_nursing",
        "?limit=1&limit=3",
    ]
    return [f"/api/v1/{kind}/{q}" for kind in ("tasks", "queue") for q in base]


def compare_all(world: World, people: list[User], step: str) -> list[str]:
    diffs = []
    for person in people:
        for url in urls(world):
            kept = get(person, url)
            with orm_path():
                orm = get(person, url)
            if kept != orm:
                diffs.append(f"{step} {person.username} {url}: kept={kept} orm={orm}")
    return diffs


def test_kept_pages_answer_as_the_orm_after_every_kind_of_change(world: World) -> None:
    nyc = User.objects.get(username="nyc-wound")
    people = [*world.users.values(), nyc]
    nurse = world.users["wound_nurse"]
    coordinator = world.users["coordinator"]
    diffs: list[str] = []
    due = world.task.due_at
    with time_machine.travel(due - dt.timedelta(hours=1), tick=False):
        diffs += compare_all(world, people, "start")
        diffs += compare_all(world, people, "again")
        care_team_end(membership_id=world.member.pk, actor=coordinator)
        diffs += compare_all(world, people, "membership-ended")
        member = care_team_add(
            enrollment_id=world.enrollment.pk, user=nurse, role=Role.WOUND_NURSING, actor=coordinator
        )
        diffs += compare_all(world, people, "membership-added")
        task = Task.objects.get(pk=world.task.pk)
        task_services.task_claim(task_id=task.pk, actor=nurse, expected_version=task.version)
        diffs += compare_all(world, people, "claimed")
        coordinator.sites.add(world.other_site)
        diffs += compare_all(world, people, "site-added")
        coordinator.sites.remove(world.site)
        diffs += compare_all(world, people, "site-removed")
        care_team_end(membership_id=member.pk, actor=None)
        diffs += compare_all(world, people, "claimed-then-ended")
    with time_machine.travel(due + dt.timedelta(days=3), tick=False):
        diffs += compare_all(world, people, "later")
    assert diffs == []


def test_kept_lookups_answer_as_the_orm(world: World) -> None:
    nurse = world.users["wound_nurse"]
    coordinator = world.users["coordinator"]
    tasks = [world.task, world.other_site_task, world.other_team_task, *Task.objects.all()[:8]]
    people = [*world.users.values(), User.objects.get(username="nyc-wound")]
    diffs = []

    def post(person: User, pk: int, action: str) -> int:
        # A wrong version: nothing changes, yet the lookup decides 404 or not.
        client = client_for(User.objects.get(pk=person.pk))
        return client.post(f"/api/v1/tasks/{pk}/{action}/", {"version": 9999, "reason": "x"}, format="json").status_code

    def compare(step: str) -> None:
        for person in people:
            for task in tasks:
                for action in ("claim", "unclaim", "start", "cancel"):
                    kept = post(person, task.pk, action)
                    with orm_path():
                        orm = post(person, task.pk, action)
                    if kept != orm:
                        diffs.append(f"{step} {person.username} {task.pk} {action}: kept={kept} orm={orm}")

    compare("start")
    care_team_end(membership_id=world.member.pk, actor=coordinator)
    compare("ended")
    coordinator.sites.remove(world.site)
    compare("site-removed")
    care_team_add(enrollment_id=world.enrollment.pk, user=nurse, role=Role.WOUND_NURSING, actor=None)
    compare("re-added")
    assert diffs == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tasks/?overdue=maybe&limit=999",
        "/api/v1/queue/?due_before=nonsense&count=perhaps",
        "/api/v1/tasks/?status=bogus&offset=-1",
        "/api/v1/tasks/?format=api",
        "/api/v1/queue/?format=api&limit=1",
    ],
)
def test_errors_and_renderers_as_before(world: World, url: str) -> None:
    person = world.users["coordinator"]
    kept = client_for(person).get(url)
    with orm_path():
        orm = client_for(person).get(url)
    assert kept.status_code < 500
    body = kept.json() if kept["Content-Type"].startswith("application/json") else None
    orm_body = orm.json() if orm["Content-Type"].startswith("application/json") else None
    assert (kept.status_code, body) == (orm.status_code, orm_body)


def test_head_on_a_kept_page(world: World) -> None:
    person = world.users["wound_nurse"]
    client_for(person).get("/api/v1/queue/")
    assert client_for(person).head("/api/v1/queue/").status_code == 200


@pytest.mark.parametrize("value", ["\u00b2", "\u2460", "\u0661\u0660"])
def test_a_non_ascii_digit_id_is_a_4xx_not_a_500(world: World, value: str) -> None:
    # str.isdigit() passes "²" and "①", which int() refuses: the narrowing of TaskViewSet.get_queryset, the audit's
    # patient hint and FHIR's ids and numbers now use domain.units.is_plain_id.
    client = client_for(world.users["coordinator"])
    assert client.get(f"/api/v1/tasks/?patient={value}").status_code == 400
    assert client.get(f"/api/v1/enrollments/?patient={value}").status_code == 400
    for url in (
        f"/fhir/R4/Task?patient=Patient/{value}",
        f"/fhir/R4/Task?_count={value}",
        f"/fhir/R4/Patient/{value}",
        f"/fhir/R4/PlanDefinition?version={value}",
    ):
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)


def test_token_clients_multi_role_users_and_flips(world: World) -> None:
    from rest_framework.test import APIClient

    from pathways.services.api_tokens import api_token_issue, api_token_revoke

    nurse = world.users["wound_nurse"]
    User.objects.filter(pk=nurse.pk).update(roles=[Role.WOUND_NURSING, Role.COORDINATOR])
    auditor = world.users["auditor"]
    User.objects.filter(pk=auditor.pk).update(roles=[Role.AUDITOR, Role.NEPHROLOGY])
    diffs = compare_all(world, [nurse, auditor], "multi")
    diffs += compare_all(world, [nurse, auditor], "multi-again")
    User.objects.filter(pk=nurse.pk).update(roles=[Role.WOUND_NURSING])
    diffs += compare_all(world, [nurse], "back")
    assert diffs == []

    token, key = api_token_issue(user=User.objects.get(pk=nurse.pk), name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    first = client.get("/api/v1/queue/")
    assert first.status_code == 200
    assert client.get("/api/v1/queue/").json() == first.json()
    User.objects.filter(pk=nurse.pk).update(is_active=False)
    assert client.get("/api/v1/queue/").status_code == 401
    User.objects.filter(pk=nurse.pk).update(is_active=True)
    assert client.get("/api/v1/queue/").status_code == 200
    api_token_revoke(token_id=token.pk, actor=None)
    assert client.get("/api/v1/queue/").status_code == 401


def test_a_list_django_knows_empty_compiles_and_counts_zero(world: World) -> None:
    from django.utils import timezone

    from pathways.api.pagination import BoundedLimitOffsetPagination

    for in_page in (False, True):
        page = compiled.compile_page(
            Task.objects.filter(pk__in=[]),
            started=timezone.now(),
            limit=5,
            offset=0,
            in_page=in_page,
            want_count=True,
            with_total=BoundedLimitOffsetPagination.with_total,
            pure=True,
        )
        assert page.rows(timezone.now()) == [] and page.counted(timezone.now()) == 0
