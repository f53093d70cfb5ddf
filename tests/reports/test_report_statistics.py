"""The planner statistics of migration 0007 must describe the expression the adherence report really groups by.

PostgreSQL matches a statistics object to a query by expression, token for token. If the SQL Django generates for
the lateness-in-minutes grouping drifts (a Django upgrade, an edit to pathways/selectors/adherence.py), the
statistics silently stop applying and the report falls back to sorting every task. This test notices."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pathways.choices import Prong, Role, TaskStatus
from pathways.models import Enrollment, Task, User
from pathways.selectors.adherence import adherence_by, adherence_window
from tests.factories import PatientFactory

pytestmark = pytest.mark.postgres

UTC = dt.UTC


def _group_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every plan node that groups by the lateness expression (it is the only CASE among the group keys)."""
    found = []
    if any("CASE WHEN" in key for key in plan.get("Group Key", [])):
        found.append(plan)
    for child in plan.get("Plans", []):
        found.extend(_group_nodes(child))
    return found


@pytest.mark.parametrize("group_by", ["prong", "role"])
def test_the_planner_knows_how_few_lateness_groups_there_are(pathway, site, auditor: User, group_by: str) -> None:
    enrollment = Enrollment.objects.create(
        patient=PatientFactory(site=site),
        template=pathway,
        pathway_slug=pathway.slug,
        enrolled_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
        status="active",
    )
    due = dt.datetime(2026, 1, 10, 12, tzinfo=UTC)
    # 3,000 completed tasks, on time or 30 or 90 minutes late: 2 prongs x 3 lateness values = 6 groups.
    Task.objects.bulk_create(
        Task(
            enrollment=enrollment,
            title="synthetic",
            prong=(Prong.WOUND_CARE, Prong.SUPPORT)[i % 2],
            role=(Role.WOUND_NURSING, Role.PHARMACY)[i % 2],
            status=TaskStatus.COMPLETED,
            available_at=due - dt.timedelta(hours=1),
            due_at=due + dt.timedelta(minutes=i),
            completed_at=due + dt.timedelta(minutes=i + (0, 30, 90)[i % 3]),
        )
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE pathways_task")
    window = adherence_window(
        start=dt.datetime(2026, 1, 1, tzinfo=UTC),
        end=dt.datetime(2026, 2, 1, tzinfo=UTC),
        now=dt.datetime(2026, 2, 1, tzinfo=UTC),
    )
    with CaptureQueriesContext(connection) as queries:
        rows = adherence_by(user=auditor, group_by=group_by, window=window)
    assert sum(row["completed_on_time"] for row in rows) == 1000
    report = next(q["sql"] for q in queries.captured_queries if "OVER (PARTITION BY" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {report}")
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = _group_nodes(plan)
    assert nodes, "the report no longer groups by the lateness expression"
    # With the statistics the estimate is about 6 groups; without them PostgreSQL guesses one per task (~3,000).
    assert all(node["Plan Rows"] <= 60 for node in nodes), [node["Plan Rows"] for node in nodes]
