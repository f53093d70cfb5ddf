"""Oracle: My work's kept first page and the kept unread count show exactly what the ORM shows.

Each step changes the world (a claim, a care-team or site change, a role change, a notification read, the clock
moving on, more work than a page holds), then every user opens My work under every filter twice: through the
statements kept since the first step (pathways.selectors.kept) and through the plain ORM (the querysets
evaluated as Django would). The two pages must be the same HTML but for their CSRF tokens."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Hashable, Iterator
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db.models import QuerySet
from django.test import Client
from django.utils import timezone

from pathways.choices import Prong, Role, TaskStatus
from pathways.models import Notification, Task, User
from pathways.selectors import workspace
from pathways.services import tasks as task_services
from pathways.services.enrollment import care_team_add, care_team_end
from pathways.services.notifications import notification_mark_read
from pathways.services.task_creation import NewTask, tasks_create
from pathways.web import work
from tests.api.conftest import World, notify
from tests.factories import UserFactory
from tests.web._specialist_fixtures import login

pytestmark = pytest.mark.postgres

USERS = ("wound_nurse", "second_nurse", "nephrologist", "coordinator", "auditor", "admin")


def _queries(world: World) -> list[str]:
    return [
        "",
        "?due=today",
        "?due=week",
        "?due=overdue",
        f"?patient={world.patient.mrn}",
        f"?patient={world.patient.family_name[:3].lower()}",
        "?patient=%25",
        "?prong=wound_care&due=overdue",
        "?prong=support",
        "?page=2",
        "?page=1",
        "?page=x",
        "?due=never&prong=nothing",
    ]


@pytest.fixture(autouse=True)
def no_kept_reads() -> Iterator[None]:
    work._first_pages.clear()
    workspace._unread_counts.clear()
    # Each step signs its users in afresh (the clock jumps past the idle limit): last_login is not in the kept
    # key (selectors.kept.user_key), so the later steps reuse what the first one kept.
    yield
    work._first_pages.clear()
    workspace._unread_counts.clear()


def _orm_values(
    cache: Any, key: Hashable, build: Callable[[dt.datetime], QuerySet[Any]], *, limit: int, now: dt.datetime
) -> tuple[list[tuple[Any, ...]], Callable[[], int]]:
    queryset = build(now)
    return list(queryset[:limit]), queryset.count


def _orm_count(cache: Any, key: Hashable, build: Callable[[dt.datetime], QuerySet[Any]], *, now: dt.datetime) -> int:
    return build(now).count()


def _page(client: Client, query: str) -> str:
    response = client.get(f"/work/{query}")
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return f"{response.status_code}\n" + re.sub(r'"X-CSRFToken": "[^"]+"', "", html)


def _compare(world: World, users: dict[str, User], step: str) -> None:
    for name in USERS:
        client = login(User.objects.get(pk=users[name].pk))  # a session that starts at this step's time
        for query in _queries(world):
            kept = _page(client, query)
            with (
                mock.patch.object(work, "kept_values", _orm_values),
                mock.patch.object(workspace, "kept_count", _orm_count),
            ):
                fresh = _page(client, query)
            assert kept == fresh, (step, name, query)


def _more_work(world: World, count: int, *, now: dt.datetime) -> None:
    tasks_create(
        enrollment_id=world.enrollment.pk,
        new_tasks=[
            NewTask(
                title=f"Extra dressing {i} <&\"'>",
                prong=Prong.WOUND_CARE if i % 2 else Prong.SUPPORT,
                role=Role.WOUND_NURSING,
                priority="routine",
                available_at=now + dt.timedelta(hours=i - count // 2 - 1),
                due_at=now + dt.timedelta(hours=i - count // 2),
            )
            for i in range(count)
        ],
        actor=None,
        now=now,
    )


def test_kept_my_work_and_unread_count_match_the_orm_through_changes(world: World) -> None:
    start = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=1)
    nurse, coordinator = world.users["wound_nurse"], world.users["coordinator"]
    second = UserFactory(username="second-wound", roles=[Role.WOUND_NURSING], sites=[world.site])
    users = {**world.users, "second_nurse": second}
    care_team_add(enrollment_id=world.enrollment.pk, user=second, role=Role.WOUND_NURSING, actor=coordinator)
    note = notify(nurse, world.task, key="oracle-1")
    notify(second, world.task, key="oracle-2")

    def step(label: str, at: dt.datetime) -> None:
        with time_machine.travel(at, tick=False):
            _compare(world, users, label)

    step("start", start)
    kept = (len(work._first_pages), len(workspace._unread_counts))
    assert kept[0] > 0 and kept[1] > 0  # the kept path was taken

    task_services.task_claim(task_id=world.task.pk, actor=nurse, expected_version=None)
    step("claimed by the nurse", start)

    notification_mark_read(notification_id=note.pk, user=nurse)
    step("a notification read", start)

    _more_work(world, 70, now=start)
    step("more than a page", start)

    step("two days on", start + dt.timedelta(days=2))

    care_team_end(membership_id=world.member.pk, actor=coordinator)
    step("the nurse off the care team", start + dt.timedelta(days=2))

    nurse.sites.remove(world.site)
    second.sites.remove(world.site)
    step("sites removed", start + dt.timedelta(days=2))
    # So far no user row changed: every step ran the statements the first one kept.
    assert (len(work._first_pages), len(workspace._unread_counts)) == kept

    # Without a site, the second nurse's pool is gone, unless they are an admin (no site bound).
    User.objects.filter(pk=second.pk).update(roles=[Role.ADMIN, Role.WOUND_NURSING])
    User.objects.filter(pk=world.users["nephrologist"].pk).update(roles=[Role.NEPHROLOGY, Role.WOUND_NURSING])
    User.objects.filter(pk=coordinator.pk).update(roles=[Role.WOUND_NURSING])
    step("roles changed", start + dt.timedelta(days=2, hours=3))

    second.sites.add(world.site)
    User.objects.filter(pk=second.pk).update(roles=[Role.WOUND_NURSING])
    step("roles changed back, the site given back", start + dt.timedelta(days=2, hours=3))

    User.objects.filter(pk=second.pk).update(is_active=False)  # signed out: the login page, kept or not
    Task.objects.filter(enrollment=world.enrollment, status=TaskStatus.REQUESTED).update(status=TaskStatus.CANCELLED)
    Notification.objects.filter(user=second).update(read_at=start)
    step("the pool cancelled", start + dt.timedelta(days=3))
