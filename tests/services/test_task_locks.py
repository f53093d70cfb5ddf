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


@pytest.mark.postgres
def test_each_api_action_reads_the_task_once_locked_and_answers_with_the_changed_row(
    task: Task, wound_nurse: User, coordinator: User
) -> None:
    # The view looks the task up in the user's scope FOR UPDATE and hands that row to the service, which neither
    # locks nor reads it again, and the answer is the changed row: what a fresh GET of the task shows.
    from tests.api.conftest import client_for

    steps = [
        (wound_nurse, "claim", {}),
        (wound_nurse, "unclaim", {}),
        (coordinator, "assign", {"assignee": wound_nurse.pk}),
        (coordinator, "hold", {"reason": "synthetic"}),
        (coordinator, "resume", {}),
        (wound_nurse, "accept", {}),
        (wound_nurse, "start", {}),
        (wound_nurse, "complete", {"outcome": "Assessed (synthetic)."}),
    ]
    for user, action, body in steps:
        client = client_for(user)
        version = Task.objects.get(pk=task.pk).version
        with CaptureQueriesContext(connection) as queries:
            response = client.post(f"/api/v1/tasks/{task.pk}/{action}/", {"version": version, **body}, format="json")
        assert response.status_code == 200, (action, response.content[:300])
        # This task's reads (completing one also locks the enrollment's tasks waiting for it: other rows).
        task_reads = [
            q["sql"]
            for q in queries.captured_queries
            if q["sql"].startswith('SELECT "pathways_task"."id"') and f'"pathways_task"."id" = {task.pk}' in q["sql"]
        ]
        assert len(task_reads) == 1 and "FOR UPDATE" in task_reads[0], (action, len(task_reads))
        assert response.json() == client.get(f"/api/v1/tasks/{task.pk}/").json(), action
        assert response.json()["version"] == version + 1, action
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


@pytest.mark.postgres
def test_an_action_on_a_task_out_of_scope_is_a_404_before_its_body_is_read(task: Task, nephrologist: User) -> None:
    # The nephrologist is on no care team of this patient: the locked lookup in scope finds nothing, whatever the
    # body says (a malformed one must not reveal that the task exists).
    from tests.api.conftest import client_for

    client = client_for(nephrologist)
    for body in ({"version": task.version}, {"version": "not a number"}, {}):
        response = client.post(f"/api/v1/tasks/{task.pk}/claim/", body, format="json")
        assert response.status_code == 404, body
    assert Task.objects.get(pk=task.pk).version == task.version
