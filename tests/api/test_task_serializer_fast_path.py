"""The task serializer's fast path (TASK_FIELDS read by their getters) returns exactly what DRF's own field-by-field
ModelSerializer path returns, for tasks in every kind of state. Factories and the real services only, no
PostgreSQL-only code: this runs on the README's SQLite path too."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework import serializers

from pathways.api.serializers import TASK_FIELDS, TaskSerializer
from pathways.models import PathwayTemplate, Site, Task, User
from pathways.selectors.tasks import task_list
from pathways.services.enrollment import care_team_add, enrollment_apply
from pathways.services.task_creation import NewTask, tasks_create
from pathways.services.tasks import task_assign, task_claim, task_hold, task_transition
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def _generic(task: Task) -> dict[str, Any]:
    # DRF's own ModelSerializer path, field by field, over the same declared fields.
    return dict(serializers.ModelSerializer.to_representation(TaskSerializer(), task))


@pytest.fixture
def tasks_in_every_state(pathway: PathwayTemplate, site: Site, coordinator: User) -> list[Task]:
    """Template tasks from a real enrollment, worked through the services into: pooled, assigned, accepted, in
    progress, completed, held until a time; plus an ad hoc task blocked by a prerequisite, and an escalated one."""
    patient = PatientFactory(site=site, risk_medications=["warfarin"])
    enrollment = enrollment_apply(
        patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, coordinator=coordinator
    )
    day0 = list(Task.objects.filter(enrollment=enrollment).order_by("pk"))
    assert len(day0) >= 6, "the pathway's day-0 work"
    completed, held, assigned, accepted, started = day0[:5]

    def staff(task: Task) -> User:
        """A specialist in the task's role, on the enrollment's care team (claiming needs both)."""
        user = UserFactory(roles=[task.role], sites=[site])
        care_team_add(enrollment_id=enrollment.pk, user=user, role=task.role, actor=coordinator)
        return user

    task = task_claim(task_id=completed.pk, actor=(nurse := staff(completed)), expected_version=1)
    task = task_transition(task_id=task.pk, to_status="in-progress", actor=nurse, expected_version=task.version)
    task_transition(task_id=task.pk, to_status="completed", actor=nurse, expected_version=task.version, outcome="Done")
    task = task_assign(task_id=held.pk, assignee=staff(held), actor=coordinator, expected_version=1)
    task_hold(
        task_id=task.pk,
        actor=coordinator,
        expected_version=task.version,
        reason="waiting for supplies",
        until=timezone.now() + dt.timedelta(hours=6),
    )
    task_assign(task_id=assigned.pk, assignee=staff(assigned), actor=coordinator, expected_version=1)
    task_claim(task_id=accepted.pk, actor=staff(accepted), expected_version=1)
    task = task_claim(task_id=started.pk, actor=(specialist := staff(started)), expected_version=1)
    task_transition(task_id=task.pk, to_status="in-progress", actor=specialist, expected_version=task.version)
    now = timezone.now()
    (ad_hoc,) = tasks_create(
        enrollment_id=enrollment.pk,
        new_tasks=[
            NewTask(
                title="Ad hoc",
                prong="support",
                role="pharmacy",
                priority="urgent",
                available_at=now - dt.timedelta(hours=8),
                due_at=now - dt.timedelta(hours=4),  # overdue
                blocked_by=("wound-assessment",),
                rule_code="high-phosphate-or-calcium",
                instructions="Check the binder dose",
            )
        ],
        actor=None,
    )
    # Escalation is a sweep's job; only its marks matter to the representation.
    Task.objects.filter(pk=ad_hoc.pk).update(escalation_level=1, escalated_at=now)
    return list(task_list(user=UserFactory(roles=["admin"], sites=[site])).filter(enrollment=enrollment))


def test_the_fast_path_equals_drfs_field_by_field_representation_for_tasks_in_every_state(
    tasks_in_every_state: list[Task],
) -> None:
    tasks = tasks_in_every_state
    # The states the fixture promises, so a change to the pathway cannot quietly make this test vacuous.
    assert {t.status for t in tasks} >= {"requested", "accepted", "in-progress", "completed", "on-hold"}
    assert any(t.template_id is None for t in tasks), "an ad hoc task"
    assert any(t.blocked_by for t in tasks), "a blocked task"
    assert any(t.assignee_id is not None and t.status == "requested" for t in tasks), "assigned, not accepted"
    assert any(t.assignee_id is None for t in tasks), "a pooled task"
    assert any(t.hold_until is not None and t.status_before_hold for t in tasks), "held until a time"
    assert any(t.completed_by_id and t.completed_at and t.started_at and t.outcome for t in tasks), "completed"
    assert any(t.escalated_at is not None and t.rule_code for t in tasks), "escalated, rule-made"
    for zone in ("UTC", "America/Chicago"):  # DRF renders times in the current zone ("Z" only for UTC)
        with timezone.override(zone):
            for task in tasks:
                assert TaskSerializer(task).data == _generic(task), (zone, task.status, task.template_id)


def test_the_fields_are_listed_once_in_the_order_of_the_schema() -> None:
    names = [name for name, _ in TASK_FIELDS]
    assert len(names) == len(set(names))
    assert list(TaskSerializer.Meta.fields) == names
    assert list(TaskSerializer().fields) == names
