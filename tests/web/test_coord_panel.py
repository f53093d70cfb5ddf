"""The coordinator panel included on the patient page, and the bulk-assignment service's all-or-nothing rule."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from pathways.choices import Role
from pathways.errors import InvalidInput, StaleVersion
from pathways.models import Task
from pathways.services.assignment import tasks_assign_bulk
from pathways.services.tasks import task_claim
from tests.web.conftest import World

pytestmark = pytest.mark.django_db


def _panel(world: World, role: str, enrollment: object) -> str:
    request = RequestFactory().get("/")
    request.user = world.users[role]
    return render_to_string(
        "pathways/work/_patient_coordinator_panel.html",
        {"patient": world.patient, "enrollment": enrollment, "user": world.users[role]},
        request=request,
    )


def test_the_panel_gives_a_coordinator_the_lifecycle_and_care_team_controls(world: World) -> None:
    html = _panel(world, "coordinator", world.enrollment)
    e = world.enrollment.pk
    for action in ("hold", "complete", "revoke"):
        assert f'action="/enrollments/{e}/{action}/"' in html
    assert f'href="/enrollments/{e}/care-team/"' in html and 'for="panel-hold-reason"' in html
    assert "wound" in html  # the current care team


def test_the_panel_offers_enrolment_when_not_enrolled_and_nothing_to_others(world: World) -> None:
    assert f'href="/patients/{world.patient.pk}/enrol/"' in _panel(world, "coordinator", None)
    for role in ("auditor", "wound_nurse", "nephrologist"):
        assert "<form" not in _panel(world, role, world.enrollment)


def test_bulk_assignment_rolls_back_every_task_when_one_is_stale(world: World) -> None:
    nurse, coordinator = world.users["wound_nurse"], world.users["coordinator"]
    tasks = list(Task.objects.filter(enrollment=world.enrollment, role=Role.WOUND_NURSING).order_by("pk"))
    versions = {t.pk: t.version for t in tasks}
    task_claim(task_id=tasks[-1].pk, actor=nurse, expected_version=tasks[-1].version)
    with pytest.raises(StaleVersion, match=rf"task {tasks[-1].pk} .*changed by wound"):
        tasks_assign_bulk(versions=versions, assignee=nurse, actor=coordinator)
    assert list(Task.objects.filter(pk__in=[t.pk for t in tasks[:-1]]).values_list("assignee", flat=True)) == [None] * (
        len(tasks) - 1
    )
    with pytest.raises(InvalidInput):
        tasks_assign_bulk(versions={}, assignee=nurse, actor=coordinator)
