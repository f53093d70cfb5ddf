"""The specialists' workspace pages through Django's client: landing per role, navigation, error pages, My work
(rows, filters, paging, query count), notifications, and the audit trail of each page."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.views.defaults import server_error

from pathways.choices import AuditAction, Prong, Role
from pathways.models import AuditEvent, Notification, Task
from pathways.selectors.access import can_act_on_task, task_actions_allowed
from pathways.services.enrollment import care_team_add, enrollment_apply
from pathways.web import work
from pathways.web.work_forms import ACTIONS
from tests.api.conftest import World, notify
from tests.factories import PatientFactory
from tests.web._specialist_fixtures import audit_event, login

pytestmark = pytest.mark.postgres

ROLES = ("coordinator", "auditor", "admin", "wound_nurse", "nephrologist")


@pytest.mark.parametrize(
    ("role", "starts_at"),
    [
        ("wound_nurse", "/work/"),
        ("nephrologist", "/work/"),
        ("admin", "/work/"),
        ("auditor", "/dashboard/"),
        # The coordinators' Patients page (workspace:patients) once it exists; the adherence overview before.
        ("coordinator", ("/patients/", "/dashboard/")),
    ],
)
def test_each_role_lands_on_a_page_it_can_use(world: World, role: str, starts_at: str | tuple[str, ...]) -> None:
    client = login(world.users[role])
    response = client.get("/")
    assert response.status_code == 302
    expected = (starts_at,) if isinstance(starts_at, str) else starts_at
    assert response["Location"] in expected
    assert client.get(response["Location"]).status_code == 200


def test_logging_in_as_a_wound_nurse_lands_on_my_work(world: World) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": "wound", "password": "test-password-123"}, follow=True)
    assert response.redirect_chain[-1][0] == "/work/"
    assert response.status_code == 200 and b"<h1>My work</h1>" in response.content


@pytest.mark.parametrize("path", ["/", "/work/", "/work/notifications/", "/patients/1/"])
def test_pages_need_a_login(world: World, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("role", ROLES)
def test_every_nav_link_a_user_sees_opens(world: World, role: str) -> None:
    client = login(world.users[role])
    html = client.get("/work/notifications/").content.decode()
    nav = html[html.index('<nav aria-label="Main">') : html.index("</nav>")]
    links = [part.split('"')[0] for part in nav.split('href="')[1:]]
    assert links, nav
    for link in links:
        assert client.get(link, follow=True).status_code == 200, link


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        ("wound_nurse", ["nav-my-work", "nav-notifications"], ["nav-overview", "nav-overdue", "nav-audit"]),
        ("auditor", ["nav-overview", "nav-overdue", "nav-audit"], ["nav-my-work"]),
        ("coordinator", ["nav-overview", "nav-overdue"], ["nav-my-work", "nav-audit"]),
        ("admin", ["nav-my-work", "nav-overview", "nav-overdue", "nav-audit", "nav-notifications"], []),
    ],
)
def test_the_nav_shows_only_what_the_user_may_open(world: World, role: str, shown: list, hidden: list) -> None:
    html = login(world.users[role]).get("/work/notifications/").content.decode()
    for element_id in shown:
        assert f'id="{element_id}"' in html
    for element_id in hidden:
        assert f'id="{element_id}"' not in html


def test_a_forbidden_page_uses_the_layout_and_links_back_to_the_start_page(world: World) -> None:
    response = login(world.users["wound_nurse"]).get("/dashboard/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="nav-my-work"' in html and 'id="back-to-start"' in html and 'href="/work/"' in html


def test_a_missing_page_uses_the_layout_and_links_back(world: World) -> None:
    response = login(world.users["wound_nurse"]).get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="nav-my-work"' in html and 'id="back-to-start"' in html


def test_the_server_error_page_renders_without_a_request_context_or_the_database(
    world: World, django_assert_num_queries
) -> None:
    with django_assert_num_queries(0):
        response = server_error(RequestFactory().get("/work/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and 'id="back-to-start"' in html and "pathways/workspace.css" in html


@pytest.mark.parametrize(("role", "status"), [(r, 200) for r in ROLES])
def test_my_work_and_notifications_answer_every_role(world: World, role: str, status: int) -> None:
    client = login(world.users[role])
    for path in ("/work/", "/work/notifications/"):
        response = client.get(path)
        assert response.status_code == status
        assert audit_event(response).action == AuditAction.READ


def _row(html: str, task: Task) -> str:
    start = html.index(f'id="task-{task.pk}"')
    return html[start : html.index("</tr>", start)]


def test_my_work_shows_the_pool_with_patient_site_time_and_what_can_be_done(world: World) -> None:
    response = login(world.users["wound_nurse"]).get("/work/")
    html = response.content.decode()
    row = _row(html, world.task)
    patient = world.patient
    assert f"{patient.family_name}, {patient.given_name}" in row and f"MRN {patient.mrn}" in row
    assert world.task.title in row and "Intensive wound care" in row and "Routine" in row
    local = world.task.due_at.astimezone(ZoneInfo("America/Chicago"))
    assert local.strftime("%Y-%m-%d %H:%M %Z") in row  # site time with the zone's abbreviation
    assert "due in " in row
    assert f'id="claim-{world.task.pk}"' in row and "Wound nursing pool" in row
    # Another team's and another site's tasks are not listed.
    assert f'data-task="{world.other_team_task.pk}"' not in html
    assert f'data-task="{world.other_site_task.pk}"' not in html
    assert str(world.task.pk) in audit_event(response).entity_ids


def test_an_overdue_task_comes_first_and_says_overdue_in_words(world: World) -> None:
    past = timezone.now() - dt.timedelta(days=2, hours=1)
    late = Task.objects.filter(enrollment=world.enrollment, role=Role.WOUND_NURSING).exclude(pk=world.task.pk).first()
    assert late is not None
    Task.objects.filter(pk=late.pk).update(available_at=past, due_at=past)
    html = login(world.users["wound_nurse"]).get("/work/").content.decode()
    assert html.index(f'id="task-{late.pk}"') < html.index(f'id="task-{world.task.pk}"')
    assert "overdue 2 d" in _row(html, late)
    overdue_only = login(world.users["wound_nurse"]).get("/work/?due=overdue").content.decode()
    assert f'id="task-{late.pk}"' in overdue_only and f'id="task-{world.task.pk}"' not in overdue_only


def test_my_work_filters_by_prong_patient_and_due_window(world: World) -> None:
    client = login(world.users["wound_nurse"])
    wound = client.get(f"/work/?prong={Prong.WOUND_CARE}").content.decode()
    assert f'id="task-{world.task.pk}"' in wound
    assert f'id="task-{world.task.pk}"' not in client.get(f"/work/?prong={Prong.SUPPORT}").content.decode()
    assert f'id="task-{world.task.pk}"' in client.get(f"/work/?patient={world.patient.mrn}").content.decode()
    assert f'id="task-{world.task.pk}"' not in client.get("/work/?patient=NO-SUCH-MRN").content.decode()
    assert f'id="task-{world.task.pk}"' in client.get("/work/?due=week").content.decode()


@pytest.mark.parametrize(
    "query",
    ["due=bogus", "prong=nope", "page=abc", "page=99999999999999999999", "patient=" + "x" * 500, "page=-1"],
)
def test_malformed_filters_never_fail_the_page(world: World, query: str) -> None:
    assert login(world.users["wound_nurse"]).get(f"/work/?{query}").status_code == 200


def _more_work(world: World, patients: int) -> None:
    now = timezone.now()
    for _ in range(patients):
        patient = PatientFactory(site=world.site)
        enrollment = enrollment_apply(
            patient_id=patient.pk, pathway_slug="calciphylaxis", actor=world.users["coordinator"], now=now
        )
        care_team_add(
            enrollment_id=enrollment.pk,
            user=world.users["wound_nurse"],
            role=Role.WOUND_NURSING,
            actor=world.users["coordinator"],
            now=now,
        )
    # Some of it claimed, so rows show assignees and different actions.
    for task in Task.objects.filter(role=Role.WOUND_NURSING, enrollment__patient__site=world.site)[:3]:
        Task.objects.filter(pk=task.pk).update(assignee=world.users["wound_nurse"], status="accepted")


def test_my_work_query_count_does_not_grow_with_rows(world: World, django_assert_max_num_queries) -> None:
    client = login(world.users["wound_nurse"])
    client.get("/work/")  # warm the session
    with django_assert_max_num_queries(16) as small:
        client.get("/work/")
    _more_work(world, 6)
    with django_assert_max_num_queries(len(small.captured_queries)) as big:
        response = client.get("/work/")
    assert response.content.decode().count('class="task-item') > 6
    assert len(big.captured_queries) == len(small.captured_queries)


def _task_counts(queries: CaptureQueriesContext) -> int:
    return sum(
        1 for q in queries.captured_queries if q["sql"].startswith('SELECT COUNT(*) AS "__count" FROM "pathways_task"')
    )


def test_my_work_counts_a_queue_that_fits_on_its_first_page_without_a_count_statement(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _more_work(world, 1)
    client = login(world.users["wound_nurse"])
    client.get("/work/")
    with CaptureQueriesContext(connection) as fits:
        html = client.get("/work/").content.decode()
    shown = html.count('class="task-item')
    assert shown > 3 and f"{shown} tasks:" in html and 'class="pager"' not in html
    assert _task_counts(fits) == 0
    # A queue longer than the first page: the same count, paged, from a COUNT statement.
    monkeypatch.setattr(work, "PAGE_SIZE", 2)
    with CaptureQueriesContext(connection) as longer:
        first = client.get("/work/").content.decode()
    assert _task_counts(longer) == 1
    assert first.count('class="task-item') == 2 and f"{shown} tasks:" in first
    assert f"page 1 of {-(-shown // 2)}" in first
    for page in ("2", "abc"):  # a later page, and a malformed number (Paginator.get_page: the first page)
        other = client.get(f"/work/?page={page}").content.decode()
        assert other.count('class="task-item') == 2 and f"{shown} tasks:" in other
    assert _row_ids(client.get("/work/?page=2").content.decode()).isdisjoint(_row_ids(first))


def _row_ids(html: str) -> set[str]:
    return set(re.findall(r'<tr id="task-(\d+)"', html))


def test_notifications_list_count_and_mark_read(world: World) -> None:
    nurse = world.users["wound_nurse"]
    mine = [notify(nurse, world.task, key=f"k{i}") for i in range(3)]
    theirs = notify(world.users["nephrologist"], world.other_team_task)
    client = login(nurse)
    html = client.get("/work/notifications/").content.decode()
    assert '<span class="count" id="unread-count">3</span>' in html
    assert all(f'data-notification="{n.pk}"' in html for n in mine)
    assert f'data-notification="{theirs.pk}"' not in html

    response = client.post(f"/work/notifications/{mine[0].pk}/read/")
    assert response.status_code == 303
    assert Notification.objects.get(pk=mine[0].pk).read_at is not None
    assert '<span class="count" id="unread-count">2</span>' in client.get("/work/").content.decode()

    # Someone else's notification is not there to mark (404), and it stays unread.
    assert client.post(f"/work/notifications/{theirs.pk}/read/").status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None

    assert client.post("/work/notifications/read-all/").status_code == 303
    assert not Notification.objects.filter(user=nurse, read_at__isnull=True).exists()
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    assert '<span class="count" id="unread-count">0</span>' in client.get("/work/").content.decode()


def test_notification_pages_reject_get_on_writes_and_huge_ids(world: World) -> None:
    client = login(world.users["wound_nurse"])
    assert client.get("/work/notifications/read-all/").status_code == 405
    assert client.post("/work/notifications/99999999999999999999/read/").status_code == 404


def test_the_unread_count_is_one_query(world: World, django_assert_num_queries) -> None:
    from pathways.selectors.workspace import unread_notification_count

    with django_assert_num_queries(1):
        assert unread_notification_count(user=world.users["wound_nurse"]) == 0


def test_workspace_pages_are_audited_by_the_middleware(world: World) -> None:
    before = AuditEvent.objects.count()
    client = login(world.users["wound_nurse"])
    for path in ("/", "/work/", "/work/notifications/", f"/patients/{world.patient.pk}/"):
        client.get(path)
    subtypes = list(AuditEvent.objects.order_by("pk").values_list("subtype", flat=True)[before:])
    assert subtypes[1:] == ["workspace my work", "workspace notifications", "workspace patient page"]
    # Static files and the health check stay out of the audit trail.
    count = AuditEvent.objects.count()
    Client().get("/healthz")
    Client().get("/static/pathways/workspace.css")
    assert AuditEvent.objects.count() == count


@pytest.mark.parametrize("role", ROLES)
def test_batch_action_permissions_agree_with_can_act_on_task(world: World, role: str) -> None:
    user = world.users[role]
    tasks = list(
        Task.objects.filter(
            enrollment__in=[world.enrollment, world.other_team_enrollment, world.other_site_enrollment]
        ).select_related("enrollment__patient")[:40]
    )
    Task.objects.filter(pk=tasks[0].pk).update(assignee=user)
    tasks[0].assignee_id = user.pk
    allowed = task_actions_allowed(user, tasks, ACTIONS)
    for task in tasks:
        for action in ACTIONS:
            assert (action in allowed[task.pk]) == can_act_on_task(user, task, action), (task.pk, action)
