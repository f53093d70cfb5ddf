"""Task actions in the workspace: each one as a plain form post (Post/Redirect/Get) and as an htmx post (the
row only), through the API's services; someone-else-first shows "Changed by"; bad input is a 400 form error;
an auditor's forged post is a 403; nothing changes unless the service succeeded; nothing answers 5xx."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from pathways.choices import Role, TaskStatus
from pathways.domain.units import QUANTITIES
from pathways.models import Flag, Observation, Task, User
from pathways.services import tasks as task_services
from pathways.services.enrollment import care_team_add
from tests.api.conftest import World
from tests.factories import UserFactory
from tests.web._specialist_fixtures import audit_event, login, post_action, state

pytestmark = pytest.mark.postgres

S = TaskStatus


def _claimed(world: World) -> Task:
    nurse = world.users["wound_nurse"]
    task_services.task_claim(task_id=world.task.pk, actor=nurse, expected_version=None)
    return Task.objects.get(pk=world.task.pk)


def _assigned(world: World) -> Task:
    task_services.task_assign(
        task_id=world.task.pk,
        assignee=world.users["wound_nurse"],
        actor=world.users["coordinator"],
        expected_version=None,
    )
    return Task.objects.get(pk=world.task.pk)


def _started(world: World) -> Task:
    task = _claimed(world)
    task_services.task_transition(
        task_id=task.pk, to_status=S.IN_PROGRESS, actor=world.users["wound_nurse"], expected_version=None
    )
    return Task.objects.get(pk=task.pk)


def _held(world: World) -> Task:
    task = _claimed(world)
    task_services.task_hold(task_id=task.pk, actor=world.users["wound_nurse"], expected_version=None, reason="x")
    return Task.objects.get(pk=task.pk)


def _pool(world: World) -> Task:
    return Task.objects.get(pk=world.task.pk)


# (action, who, setup, extra form data, expected status, expected assignee: "me" | None)
CASES: list[tuple[str, str, Callable[[World], Task], dict, str, str | None]] = [
    ("claim", "wound_nurse", _pool, {}, S.ACCEPTED, "me"),
    ("unclaim", "wound_nurse", _claimed, {}, S.REQUESTED, None),
    ("accept", "wound_nurse", _assigned, {}, S.ACCEPTED, "me"),
    ("start", "wound_nurse", _claimed, {}, S.IN_PROGRESS, "me"),
    ("complete", "wound_nurse", _started, {"outcome": "Scored 22"}, S.COMPLETED, "me"),
    ("hold", "wound_nurse", _claimed, {"reason": "Patient in theatre"}, S.ON_HOLD, "me"),
    ("resume", "wound_nurse", _held, {}, S.ACCEPTED, "me"),
    ("fail", "wound_nurse", _claimed, {"reason": "Patient declined"}, S.FAILED, "me"),
    ("cancel", "coordinator", _pool, {"reason": "Duplicate"}, S.CANCELLED, None),
]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(("action", "who", "setup", "data", "status", "assignee"), CASES, ids=[c[0] for c in CASES])
def test_every_action_works_as_a_plain_post_and_with_htmx(
    world: World, htmx: bool, action: str, who: str, setup, data: dict, status: str, assignee: str | None
) -> None:
    task = setup(world)
    user = world.users[who]
    client = login(user)
    response = post_action(client, task, action, htmx=htmx, **data)
    now_status, now_assignee, now_version = state(task)
    assert (now_status, now_version) == (status, task.version + 1)
    assert now_assignee == (world.users["wound_nurse"].pk if assignee == "me" else None)
    if htmx:
        assert response.status_code == 200
        html = response.content.decode()
        assert html.lstrip().startswith(f'<tr id="task-{task.pk}"')  # the row only, not a page
        assert "<html" not in html and f'data-status="{status}"' in html
        assert 'id="live" hx-swap-oob="innerHTML"' in html  # the outcome is announced
    else:
        assert response.status_code == 303 and response["Location"] == "/work/"
        page = client.get("/work/").content.decode()
        assert 'role="status" aria-live="polite"><p class="message success">' in page
    event = audit_event(response)
    assert event.subtype == f"workspace task {action}" and event.patient_id == world.patient.pk


def test_the_patient_page_card_is_swapped_for_htmx_posts_from_it(world: World) -> None:
    response = post_action(login(world.users["wound_nurse"]), _pool(world), "claim", htmx=True, view="card")
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<article id="task-{world.task.pk}"')


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_stale_version_shows_who_changed_it_and_changes_nothing(world: World, htmx: bool) -> None:
    task = _pool(world)
    colleague = UserFactory(username="colleague", roles=[Role.WOUND_NURSING], sites=[world.site])
    care_team_add(
        enrollment_id=world.enrollment.pk, user=colleague, role=Role.WOUND_NURSING, actor=world.users["coordinator"]
    )
    task_services.task_claim(task_id=task.pk, actor=colleague, expected_version=task.version)
    before = state(task)
    response = post_action(login(world.users["wound_nurse"]), task, "claim", htmx=htmx)  # the old version
    assert state(task) == before
    assert response.status_code == (200 if htmx else 409)
    html = response.content.decode()
    assert "Changed by colleague at " in html and "now Accepted, assigned to colleague." in html
    assert "CST" in html or "CDT" in html  # the change time in the site's zone
    assert f'id="claim-{task.pk}"' not in html  # the task as it is now: nothing left to claim
    if not htmx:
        assert 'id="nav-my-work"' in html and 'href="/work/" id="back"' in html  # the layout, a way back
    # task_claim finds the task assigned before it compares versions: either conflict is recorded.
    assert audit_event(response).subtype.endswith(("stale_version", "illegal_transition"))


def test_an_illegal_move_shows_the_task_as_it_is_now(world: World) -> None:
    task = _claimed(world)
    # Resuming a task that is not on hold (e.g. a colleague resumed it in the meantime): a conflict, shown.
    response = post_action(login(world.users["wound_nurse"]), task, "resume", htmx=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Changed by wound at " in html and "now Accepted, assigned to wound." in html
    assert state(task) == (task.status, task.assignee_id, task.version)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(
    ("action", "setup", "field"),
    [("hold", _claimed, "Reason"), ("fail", _claimed, "Reason"), ("complete", _started, "Outcome")],
)
def test_a_missing_reason_or_outcome_is_a_400_form_error_and_changes_nothing(
    world: World, htmx: bool, action: str, setup, field: str
) -> None:
    task = setup(world)
    before = state(task)
    response = post_action(login(world.users["wound_nurse"]), task, action, htmx=htmx, reason="  ", outcome="")
    assert response.status_code == 400
    html = response.content.decode()
    assert f"{field}: This field is required." in html
    assert '<details class="act-more" open>' in html  # the form is shown again, open
    assert state(task) == before


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_an_auditors_forged_post_is_a_403_and_changes_nothing(world: World, htmx: bool) -> None:
    task = _pool(world)
    before = state(task)
    for action, data in (("claim", {}), ("cancel", {"reason": "x"}), ("complete", {"outcome": "x"})):
        response = post_action(login(world.users["auditor"]), task, action, htmx=htmx, **data)
        assert response.status_code == 403
    assert state(task) == before
    assert audit_event(response).outcome != "0"


def test_a_specialist_not_permitted_gets_a_403_not_a_change(world: World) -> None:
    task = _claimed(world)
    before = state(task)
    # The coordinator may manage (cancel) but not work (complete) a task.
    response = post_action(login(world.users["coordinator"]), task, "complete", outcome="done")
    assert response.status_code == 403 and 'id="back-to-start"' in response.content.decode()
    assert state(task) == before


@pytest.mark.parametrize(
    ("path_action", "data", "status"),
    [
        ("claim", {"version": "abc"}, 400),
        ("claim", {"version": "99999999999999999999"}, 400),
        ("claim", {"version": "-1"}, 400),
        ("claim", {"version": ""}, 400),
        ("explode", {"version": "1"}, 404),
        ("hold", {"version": "1", "reason": "x" * 5000}, 400),
    ],
)
def test_malformed_input_is_a_4xx_never_a_500(world: World, path_action: str, data: dict, status: int) -> None:
    task = _pool(world)
    before = state(task)
    response = login(world.users["wound_nurse"]).post(f"/work/tasks/{task.pk}/{path_action}/", data)
    assert response.status_code == status
    assert state(task) == before


def test_unknown_and_out_of_scope_tasks_are_404(world: World) -> None:
    client = login(world.users["wound_nurse"])
    for task_id in (world.other_site_task.pk, world.other_team_task.pk, 99999999999999999999):
        assert client.post(f"/work/tasks/{task_id}/claim/", {"version": 1}).status_code == 404
    htmx = client.post(f"/work/tasks/{world.other_site_task.pk}/claim/", {"version": 1}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 404 and "not available to you" in htmx.content.decode()
    assert state(world.other_site_task)[1] is None


def test_actions_are_post_only_and_csrf_protected(world: World) -> None:
    task = _pool(world)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["wound_nurse"])
    assert client.get(f"/work/tasks/{task.pk}/claim/").status_code == 405
    assert client.post(f"/work/tasks/{task.pk}/claim/", {"version": task.version}).status_code == 403
    assert state(task)[1] is None
    # With the token in the header, as htmx sends it from <body hx-headers>.
    client.get("/work/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/work/tasks/{task.pk}/claim/", {"version": task.version}, HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and state(task)[1] == world.users["wound_nurse"].pk


def test_the_next_url_must_stay_on_this_site(world: World) -> None:
    response = post_action(login(world.users["wound_nurse"]), _pool(world), "claim", next="https://evil.example/")
    assert response.status_code == 303 and response["Location"] == "/work/"


def test_an_auditor_sees_no_write_control_on_my_work_or_the_patient_page(world: World) -> None:
    client = login(world.users["auditor"])
    for path in ("/work/", f"/patients/{world.patient.pk}/"):
        html = client.get(path).content.decode()
        assert "hx-post" not in html and "/work/tasks/" not in html


# --- completing with values -----------------------------------------------------------------------------


@pytest.fixture
def labs(world: World, dialysis_nurse: User) -> Task:
    care_team_add(
        enrollment_id=world.enrollment.pk,
        user=dialysis_nurse,
        role=Role.DIALYSIS_NURSING,
        actor=world.users["coordinator"],
    )
    task = Task.objects.get(enrollment=world.enrollment, template__code="pre-dialysis-labs")
    task_services.task_claim(task_id=task.pk, actor=dialysis_nurse, expected_version=None)
    return Task.objects.get(pk=task.pk)


def test_the_values_form_offers_exactly_the_units_the_api_accepts(world: World, labs: Task, dialysis_nurse) -> None:
    client = login(dialysis_nurse)
    assert f"/work/tasks/{labs.pk}/values/" in client.get("/work/").content.decode()
    html = client.get(f"/work/tasks/{labs.pk}/values/").content.decode()
    for code in ("calcium", "phosphate", "albumin", "bicarbonate", "anion_gap"):
        start = html.index(f'name="unit_{code}"')
        select = html[start : html.index("</select>", start)]
        options = [part.split('"')[0] for part in select.split('<option value="')[1:]]
        quantity = QUANTITIES[code]
        assert options[0] == quantity.canonical
        assert sorted(options) == sorted(quantity.units)


def test_completing_labs_in_mmol_shows_the_nephrology_task_and_the_ca_x_p_flag(
    world: World, labs: Task, dialysis_nurse
) -> None:
    client = login(dialysis_nurse)
    response = client.post(
        f"/work/tasks/{labs.pk}/values/",
        {
            "version": labs.version,
            "value_calcium": "2.6",
            "unit_calcium": "mmol/L",
            "value_phosphate": "2.2",
            "unit_phosphate": "mmol/L",
            "value_albumin": "35",
            "unit_albumin": "g/L",
            "unit_bicarbonate": "mmol/L",
            "unit_anion_gap": "mmol/L",
            "outcome": "Drawn pre-dialysis",
        },
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    html = response.content.decode()
    assert "High phosphate or calcium: nephrology review" in html
    assert 'data-flag="ca-x-p-high"' in html
    assert state(labs)[0] == S.COMPLETED
    calcium = Observation.objects.get(task=labs, code="calcium")
    assert (calcium.entered_unit, calcium.unit, calcium.value) == ("mmol/L", "mg/dL", Decimal("10.4208"))
    assert Flag.objects.filter(enrollment=world.enrollment, code="ca-x-p-high", cleared_at__isnull=True).exists()
    assert audit_event(response).patient_id == world.patient.pk


@pytest.mark.parametrize(
    "values",
    [
        {"value_calcium": "98", "unit_calcium": "mg/dL"},  # implausible
        {"value_calcium": "2.4", "unit_calcium": "mmol/l; drop"},  # not one of the choices
        {"value_calcium": "abc", "unit_calcium": "mg/dL"},
        {},  # nothing entered
    ],
)
def test_bad_values_are_a_400_and_nothing_is_recorded(world: World, labs: Task, dialysis_nurse, values: dict) -> None:
    before = state(labs)
    units = {f"unit_{c}": QUANTITIES[c].canonical for c in ("calcium", "phosphate", "albumin", "bicarbonate")}
    data = {"version": labs.version, **units, "unit_anion_gap": "mmol/L", **values}
    response = login(dialysis_nurse).post(f"/work/tasks/{labs.pk}/values/", data)
    assert response.status_code == 400
    assert 'id="values-form"' in response.content.decode()
    assert state(labs) == before and not Observation.objects.filter(task=labs).exists()


def test_completing_values_with_a_stale_version_shows_the_notice(world: World, labs: Task, dialysis_nurse) -> None:
    task_services.task_transition(task_id=labs.pk, to_status=S.IN_PROGRESS, actor=dialysis_nurse, expected_version=None)
    before = state(labs)
    response = login(dialysis_nurse).post(
        f"/work/tasks/{labs.pk}/values/",
        {"version": labs.version, "value_calcium": "9.5", "unit_calcium": "mg/dL", "unit_phosphate": "mg/dL"}
        | {"unit_albumin": "g/dL", "unit_bicarbonate": "mmol/L", "unit_anion_gap": "mmol/L"},
    )
    assert response.status_code == 409
    assert "Changed by dialysis at " in response.content.decode()
    assert state(labs) == before


def test_tasks_without_values_and_read_only_users_get_no_values_form(world: World, labs: Task) -> None:
    dressing = Task.objects.get(enrollment=world.enrollment, template__code="dressing-change")
    assert login(world.users["wound_nurse"]).get(f"/work/tasks/{dressing.pk}/values/").status_code == 404
    assert login(world.users["auditor"]).get(f"/work/tasks/{labs.pk}/values/").status_code == 403


def test_relative_phrases_are_in_words(world: World) -> None:
    from pathways.web.work import relative

    now = timezone.now()
    assert relative(now - dt.timedelta(days=2, hours=3), now) == "overdue 2 d"
    assert relative(now + dt.timedelta(hours=3, minutes=5), now) == "due in 3 h"
    assert relative(now + dt.timedelta(minutes=20), now) == "due in 20 min"


@pytest.mark.parametrize(("action", "who", "setup", "data", "status", "assignee"), CASES, ids=[c[0] for c in CASES])
def test_every_action_reads_its_task_once_locked(
    world: World, action: str, who: str, setup, data: dict, status: str, assignee: str | None
) -> None:
    # As the API's actions (tests/services/test_task_locks.py): the view looks the task up in the user's reach
    # FOR UPDATE and hands that row to the service, which neither locks nor reads it again (issue 15).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    task = setup(world)
    client = login(world.users[who])
    with CaptureQueriesContext(connection) as queries:
        response = post_action(client, task, action, **data)
    assert response.status_code == 303, response.content[:300]
    locks = [
        q["sql"]
        for q in queries.captured_queries
        if "FOR UPDATE" in q["sql"] and f'"pathways_task"."id" = {task.pk}' in q["sql"]
    ]
    assert len(locks) == 1, locks
    assert state(task)[0] == status
