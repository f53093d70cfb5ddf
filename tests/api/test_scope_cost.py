"""A specialist's task pages cost what that specialist can see, not what the network has open (issue 15).

The open-heavy bench shape (bench/data.py) gives each specialist a fixed number of care teams whatever the scale.
Growing it tenfold adds only other teams' work, most of it open and in the same roles' pools: the pages of a
specialist whose own work stays the same must run the same statements and read about as many task rows
(PostgreSQL's own count, from EXPLAIN ANALYZE). The small tables around them (enrollments, sites) may be hashed
whole while they hold a few hundred rows: the planner's choice at this size, not a scan of open work. The selectors
before issue 15 read every open pool task of the network for the queue, and this test failed on them.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import data as bench_data
from bench.plans import explain, rows_read
from pathways.choices import OPEN_TASK_STATUSES
from pathways.models import PathwayTemplate, Task, User
from pathways.selectors.access import scope_tasks_to_claim
from pathways.selectors.tasks import task_list, task_queue_for_user
from tests.api.conftest import client_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TEAMS = 5  # care teams per specialist in this test's network
USER = "benchopen-1-wound_nursing-0"
PAGES = ("/api/v1/queue/", "/api/v1/tasks/?pool=true", "/api/v1/tasks/?assignee=me")


def _selectors(user: User) -> dict[str, object]:
    return {
        "queue page": task_queue_for_user(user=user)[:50],
        "queue count": task_queue_for_user(user=user).values("pk"),
        "pool page": task_list(user=user).filter(assignee__isnull=True, role__in=user.roles)[:50],
        "assigned page": task_list(user=user).filter(assignee=user)[:50],
    }


def _open_pool(user: User):  # type: ignore[no-untyped-def]
    return Task.objects.filter(status__in=OPEN_TASK_STATUSES, assignee__isnull=True, role__in=user.roles)


def _measure(user: User) -> tuple[dict[str, int], dict[str, int], dict[str, list[int]]]:
    """Task rows read by each selector query, statements per API page, and the ids each page shows."""
    reads = {name: rows_read(explain(qs), "pathways_task") for name, qs in _selectors(user).items()}  # type: ignore[arg-type]
    client = client_for(user)
    statements, shown = {}, {}
    for path in PAGES:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, response.content[:300]
        statements[path] = len(queries.captured_queries)
        shown[path] = [row["id"] for row in response.json()["results"]]
    return reads, statements, shown


def test_a_specialists_pages_read_the_same_rows_when_ten_times_more_unrelated_pool_work_is_added(
    pathway: PathwayTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_data, "OPEN_TEAMS_PER_SPECIALIST", TEAMS)
    now = timezone.now()
    # Every site's first TEAMS enrollments are specialist 0's: 3 sites x TEAMS enrollments x 50 tasks.
    bench_data.bench_fill(tasks=3 * TEAMS * 50, now=now, progress=False, shape=bench_data.OPEN)
    user = User.objects.get(username=USER)
    visible = task_queue_for_user(user=user).count()
    assert visible >= 20, visible
    reads_before, statements_before, shown_before = _measure(user)
    pool_before = _open_pool(user).count()

    bench_data.bench_fill(tasks=10 * 3 * TEAMS * 50, now=now, progress=False, shape=bench_data.OPEN)
    added = _open_pool(user).count() - pool_before
    assert added >= 8 * pool_before  # the network's open pool in the user's role grew tenfold ...
    assert task_queue_for_user(user=user).count() == visible  # ... and the user's own work did not
    reads_after, statements_after, shown_after = _measure(user)

    assert shown_after == shown_before
    assert statements_after == statements_before
    # What the user's care teams hold (every status): the most a plan that starts from the user may read.
    team_tasks = Task.objects.filter(
        enrollment__care_team__user=user, enrollment__care_team__period_end__isnull=True
    ).count()
    for name, before in reads_before.items():
        # PostgreSQL may pick another plan on the bigger tables (the user's tasks through the assignee index, or
        # every task of the user's teams through the enrollment index): either stays within the user's teams ...
        assert reads_after[name] <= 2 * team_tasks + 100, (name, team_tasks, reads_before, reads_after)
        # ... whereas reading the network's new pool work at all (the OR-of-EXISTS plan) adds at least `added`.
        assert reads_after[name] - before < added / 2, (name, reads_before, reads_after, added)


def test_looking_up_one_task_to_claim_reads_a_handful_of_rows(pathway: PathwayTemplate, monkeypatch) -> None:
    monkeypatch.setattr(bench_data, "OPEN_TEAMS_PER_SPECIALIST", TEAMS)
    bench_data.bench_fill(tasks=10 * 3 * TEAMS * 50, now=timezone.now(), progress=False, shape=bench_data.OPEN)
    user = User.objects.get(username=USER)
    task = task_queue_for_user(user=user).filter(assignee__isnull=True).first()
    assert task is not None
    # The id is pushed into both branches of the scope: one row each, not the user's whole work.
    assert rows_read(explain(scope_tasks_to_claim(user).filter(pk=task.pk)), "pathways_task") <= 3


def test_one_patients_tasks_read_that_patients_rows_not_the_users_whole_scope(pathway: PathwayTemplate, monkeypatch):
    # The patient page and `?patient=` lists narrow the scope inside both branches: without it PostgreSQL ran the
    # scope's UNION once per task of the patient, each run reading all the user's work (220 ms at 1M tasks).
    monkeypatch.setattr(bench_data, "OPEN_TEAMS_PER_SPECIALIST", TEAMS)
    bench_data.bench_fill(tasks=10 * 3 * TEAMS * 50, now=timezone.now(), progress=False, shape=bench_data.OPEN)
    user = User.objects.get(username=USER)
    task = task_queue_for_user(user=user).first()
    assert task is not None
    patient_id = task.enrollment.patient_id
    narrowed = task_list(user=user, patient_id=patient_id)
    filtered = task_list(user=user).filter(enrollment__patient_id=patient_id)
    assert list(narrowed.values_list("pk", flat=True)) == list(filtered.values_list("pk", flat=True))
    own = Task.objects.filter(enrollment__patient_id=patient_id).count()
    visible_everywhere = task_list(user=user).count()
    assert visible_everywhere > narrowed.count()  # the user sees other patients' work too
    # Each branch reads the patient's tasks (twice at most, once per branch), never the user's other patients'.
    assert rows_read(explain(narrowed), "pathways_task") <= 3 * own, (own, visible_everywhere)
    response = client_for(user).get(f"/api/v1/tasks/?patient={patient_id}")
    assert [row["id"] for row in response.json()["results"]] == list(narrowed.values_list("pk", flat=True)[:50])


def test_a_list_of_ones_own_tasks_reads_the_assigned_branch_alone_and_shows_the_same_tasks(
    pathway: PathwayTemplate, monkeypatch
) -> None:
    # `?assignee=me` narrows the scope to the assigned branch (scope_tasks(own=True)): a pool holds only unassigned
    # tasks, so its branch was read and then discarded by the filter. Same tasks, same order, fewer rows read.
    monkeypatch.setattr(bench_data, "OPEN_TEAMS_PER_SPECIALIST", TEAMS)
    bench_data.bench_fill(tasks=10 * 3 * TEAMS * 50, now=timezone.now(), progress=False, shape=bench_data.OPEN)
    users = [User.objects.get(username=USER), User.objects.get(username="benchopen-1-nephrology-0")]
    users += list(User.objects.filter(username__startswith="benchopen-1-coordinator")[:1])
    for user in users:
        narrowed = task_list(user=user, own=True)
        filtered = task_list(user=user).filter(assignee=user)
        ids = list(filtered.values_list("pk", flat=True))
        assert list(narrowed.values_list("pk", flat=True)) == ids, user.username
        response = client_for(user).get("/api/v1/tasks/?assignee=me&limit=200")
        assert [row["id"] for row in response.json()["results"]] == ids[:200], user.username
    nephrologist = users[1]
    assert task_list(user=nephrologist, own=True).exists()
    assert rows_read(explain(task_list(user=nephrologist, own=True)), "pathways_task") < rows_read(
        explain(task_list(user=nephrologist).filter(assignee=nephrologist)), "pathways_task"
    )
