"""What My work keeps per process (issue 15's cost, issue 13's My work ÷ queue target), and why a kept read never
shows what a fresh one would not: the first page's statements (pathways.web.work), the unread count, a version's
templates and precautions (selectors/templates.py), reversed row URLs (web/reversing.py), the rows and cards in
Jinja2 (web/jinja_env.py), and the page's permissions in one statement."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from pathways.choices import PathwayStage
from pathways.models import Task
from pathways.selectors import templates as version_content
from pathways.selectors.access import can_act_on_task, task_actions_allowed
from pathways.services.enrollment import care_team_end
from pathways.web import reversing, work
from pathways.web.work_forms import ACTIONS
from tests.api.conftest import World, notify
from tests.web._specialist_fixtures import login

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def no_kept_pages() -> Iterator[None]:
    work._first_pages.clear()
    yield
    work._first_pages.clear()


def _ids(html: str) -> set[int]:
    return {int(found) for found in re.findall(r'data-task="(\d+)"', html)}


def test_my_works_first_page_is_built_once_and_a_care_team_change_shows_at_once(world: World) -> None:
    client = login(world.users["wound_nurse"])
    with mock.patch.object(work, "my_work_tasks", wraps=work.my_work_tasks) as builds:
        assert world.task.pk in _ids(client.get("/work/").content.decode())
        assert world.task.pk in _ids(client.get("/work/").content.decode())
        assert builds.call_count == 1
        # The memberships are a subquery of the kept statement: read when it runs.
        care_team_end(membership_id=world.member.pk, actor=world.users["coordinator"])
        html = client.get("/work/").content.decode()
        assert builds.call_count == 1
    assert world.task.pk not in _ids(html) and "Nothing to do here" in html


def test_each_filter_is_its_own_kept_page(world: World) -> None:
    client = login(world.users["wound_nurse"])
    with mock.patch.object(work, "my_work_tasks", wraps=work.my_work_tasks) as builds:
        for _ in range(2):
            assert world.task.pk in _ids(client.get("/work/?prong=wound_care").content.decode())
            assert world.task.pk not in _ids(client.get("/work/?prong=support").content.decode())
            assert world.task.pk in _ids(client.get(f"/work/?patient={world.patient.mrn}").content.decode())
    assert builds.call_count == 3


def test_now_is_bound_afresh_on_every_request(world: World) -> None:
    client = login(world.users["wound_nurse"])
    start = timezone.now()
    Task.objects.filter(pk=world.task.pk).update(available_at=start, due_at=start + dt.timedelta(minutes=1))
    with mock.patch.object(work, "my_work_tasks", wraps=work.my_work_tasks) as builds:
        assert world.task.pk not in _ids(client.get("/work/?due=overdue").content.decode())
        # Five minutes on (within the session's idle limit): the same kept statement, a later "now".
        with time_machine.travel(start + dt.timedelta(minutes=5)):
            html = client.get("/work/?due=overdue").content.decode()
    assert world.task.pk in _ids(html) and "overdue 4 min" in html
    assert builds.call_count == 1


def test_a_window_that_starts_at_local_midnight_is_not_kept(world: World) -> None:
    # "today" is bounded by the user's local midnight: a time derived from the clock, not "now".
    client = login(world.users["wound_nurse"])
    with mock.patch.object(work, "my_work_tasks", wraps=work.my_work_tasks) as builds:
        client.get("/work/?due=today")
        client.get("/work/?due=today")
    assert builds.call_count == 2 and len(work._first_pages) == 0


def test_a_new_notification_shows_in_the_kept_unread_count(world: World) -> None:
    client = login(world.users["wound_nurse"])

    def unread() -> int:
        html = client.get("/work/notifications/").content.decode()
        return int(re.search(r'id="unread-count">(\d+)<', html).group(1))  # type: ignore[union-attr]

    before = unread()
    notify(world.users["wound_nurse"], world.task, key="kept-1")
    assert unread() == before + 1


def test_the_rows_forms_share_one_csrf_token_and_the_tag_names_its_views(world: World) -> None:
    html = login(world.users["wound_nurse"]).get("/work/").content.decode()
    table = html[html.index('id="my-work"') : html.index("</table>")]
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', table)
    assert len(tokens) > 1 and len(set(tokens)) == 1
    template = Template('{% load workspace %}{% task_items rows "table" %}')
    with pytest.raises(TemplateSyntaxError, match='"row" or "card"'):
        template.render(Context({"rows": [], "request": RequestFactory().get("/work/")}))


def test_a_pages_permissions_are_one_statement_and_can_act_on_tasks_answer(world: World) -> None:
    user = world.users["wound_nurse"]
    tasks = list(
        Task.objects.select_related("enrollment__patient").filter(
            pk__in=[world.task.pk, world.other_team_task.pk, world.other_site_task.pk]
        )
    )
    with CaptureQueriesContext(connection) as queries:
        allowed = task_actions_allowed(user, tasks, ACTIONS)
    assert len(queries.captured_queries) == 1
    for task in tasks:
        assert allowed[task.pk] == frozenset(a for a in ACTIONS if can_act_on_task(user, task, a)), task.pk
    assert "claim" in allowed[world.task.pk] and not allowed[world.other_site_task.pk]


def test_a_versions_templates_and_precautions_are_read_once(world: World) -> None:
    version = world.enrollment.template_id
    version_content._kept.clear()
    version_content._precautions.clear()
    with CaptureQueriesContext(connection) as first:
        templates = version_content.stage_templates(pathway_id=version, stage=PathwayStage.TREATMENT)
        precautions = version_content.precautions_by_version({version})
    with CaptureQueriesContext(connection) as again:
        assert version_content.stage_templates(pathway_id=version, stage=PathwayStage.TREATMENT) == templates
        assert version_content.precautions_by_version({version}) == precautions
    assert (len(first.captured_queries), len(again.captured_queries)) == (2, 0)
    assert templates and all(t.pathway_id == version and t.stage == PathwayStage.TREATMENT for t in templates)
    assert precautions[version] == world.pathway.precautions


def test_a_kept_url_is_the_reversed_one_and_follows_the_url_configuration(world: World) -> None:
    reversing._urls.clear()
    expected = reverse("workspace:task-action", args=[world.task.pk, "claim"])
    assert reversing.reverse_kept("workspace:task-action", world.task.pk, "claim") == expected
    with mock.patch.object(reversing, "reverse", side_effect=AssertionError("not remembered")):
        assert reversing.reverse_kept("workspace:task-action", world.task.pk, "claim") == expected
    with override_settings(ROOT_URLCONF="carepath.urls"):  # a changed setting empties the cache
        assert len(reversing._urls) == 0
