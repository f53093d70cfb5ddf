"""Every task service locks the task's row once (issue 15: claim used to run SELECT … FOR UPDATE twice)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pathways.choices import TaskStatus
from pathways.models import CareTeamMember, Task, User
from pathways.services.enrollment import enrollment_apply
from pathways.services.tasks import task_assign, task_claim, task_hold, task_resume, task_transition, task_unclaim
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(pathway, coordinator, site, wound_nurse) -> Task:
    patient = PatientFactory(site=site)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    CareTeamMember.objects.create(
        enrollment=enrollment, user=wound_nurse, role="wound_nursing", period_start=enrollment.enrolled_at
    )
    return Task.objects.filter(enrollment=enrollment, template__code="wound-assessment").get()


def _row_locks_of(task: Task, call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return sum(
        1
        for q in queries.captured_queries
        if "FOR UPDATE" in q["sql"] and 'FROM "pathways_task"' in q["sql"] and f"= {task.pk}" in q["sql"]
    )


@pytest.mark.postgres
def test_each_task_service_locks_the_row_once(task: Task, wound_nurse: User, coordinator: User) -> None:
    steps: list[tuple[str, Callable[[int], Any]]] = [
        ("claim", lambda v: task_claim(task_id=task.pk, actor=wound_nurse, expected_version=v)),
        ("unclaim", lambda v: task_unclaim(task_id=task.pk, actor=wound_nurse, expected_version=v)),
        ("assign", lambda v: task_assign(task_id=task.pk, assignee=wound_nurse, actor=coordinator, expected_version=v)),
        ("hold", lambda v: task_hold(task_id=task.pk, actor=coordinator, expected_version=v, reason="synthetic")),
        ("resume", lambda v: task_resume(task_id=task.pk, actor=coordinator, expected_version=v)),
        (
            "accept",
            lambda v: task_transition(
                task_id=task.pk, to_status=TaskStatus.ACCEPTED, actor=wound_nurse, expected_version=v
            ),
        ),
    ]
    for name, step in steps:
        version = Task.objects.get(pk=task.pk).version
        assert _row_locks_of(task, lambda step=step, version=version: step(version)) == 1, name
    task.refresh_from_db()
    assert (task.status, task.assignee_id) == (TaskStatus.ACCEPTED, wound_nurse.pk)
