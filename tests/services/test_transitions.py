"""The task lifecycle: every pair of states, the version check, events, permissions."""

from __future__ import annotations

import itertools

import pytest

from pathways.choices import TaskEventKind, TaskStatus
from pathways.errors import IllegalTransition, InvalidInput, NotPermitted, StaleVersion
from pathways.models import CareTeamMember, Task, TaskEvent
from pathways.services.enrollment import enrollment_apply
from pathways.services.tasks import (
    TRANSITIONS,
    task_assign,
    task_claim,
    task_hold,
    task_resume,
    task_transition,
    task_unclaim,
)
from tests.factories import PatientFactory, UserFactory

S = TaskStatus
ALL = list(S.values)

# The table the design specifies, written out independently of the implementation.
EXPECTED_ALLOWED = {
    (S.REQUESTED, S.ACCEPTED),
    (S.REQUESTED, S.IN_PROGRESS),
    (S.REQUESTED, S.ON_HOLD),
    (S.REQUESTED, S.CANCELLED),
    (S.REQUESTED, S.FAILED),
    (S.REQUESTED, S.ENTERED_IN_ERROR),
    (S.ACCEPTED, S.REQUESTED),
    (S.ACCEPTED, S.IN_PROGRESS),
    (S.ACCEPTED, S.COMPLETED),
    (S.ACCEPTED, S.ON_HOLD),
    (S.ACCEPTED, S.CANCELLED),
    (S.ACCEPTED, S.FAILED),
    (S.ACCEPTED, S.ENTERED_IN_ERROR),
    (S.IN_PROGRESS, S.COMPLETED),
    (S.IN_PROGRESS, S.ON_HOLD),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.ENTERED_IN_ERROR),
    (S.ON_HOLD, S.REQUESTED),
    (S.ON_HOLD, S.ACCEPTED),
    (S.ON_HOLD, S.IN_PROGRESS),
    (S.ON_HOLD, S.CANCELLED),
    (S.ON_HOLD, S.FAILED),
    (S.ON_HOLD, S.ENTERED_IN_ERROR),
    (S.COMPLETED, S.ENTERED_IN_ERROR),
    (S.CANCELLED, S.ENTERED_IN_ERROR),
    (S.FAILED, S.ENTERED_IN_ERROR),
    # Missed: workable session-bound work whose window ended (the expiry sweep); a held task is not missed.
    (S.REQUESTED, S.MISSED),
    (S.ACCEPTED, S.MISSED),
    (S.IN_PROGRESS, S.MISSED),
    (S.MISSED, S.ENTERED_IN_ERROR),
}


@pytest.fixture
def task(pathway, coordinator, site) -> Task:
    patient = PatientFactory(site=site)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    return Task.objects.filter(enrollment=enrollment, template__code="wound-assessment").get()


def _force(task: Task, status: str) -> Task:
    """Put a task into a starting state for the table test (test set-up only, not a service path)."""
    Task.objects.filter(pk=task.pk).update(status=status, status_before_hold=S.REQUESTED if status == S.ON_HOLD else "")
    task.refresh_from_db()
    return task


def test_the_implemented_table_is_the_designed_table() -> None:
    implemented = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert implemented == EXPECTED_ALLOWED


@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(ALL, ALL)))
def test_every_pair_of_states_is_allowed_or_refused_as_designed(task, from_status, to_status) -> None:
    task = _force(task, from_status)
    version = task.version
    events_before = TaskEvent.objects.filter(task=task).count()
    allowed = (from_status, to_status) in EXPECTED_ALLOWED
    if allowed:
        task_transition(task_id=task.pk, to_status=to_status, actor=None, expected_version=version, reason="table test")
        task.refresh_from_db()
        assert task.status == to_status
        assert task.version == version + 1
        event = TaskEvent.objects.filter(task=task).latest("pk")
        assert (event.kind, event.from_status, event.to_status) == (TaskEventKind.TRANSITIONED, from_status, to_status)
    else:
        with pytest.raises(IllegalTransition) as excinfo:
            task_transition(
                task_id=task.pk, to_status=to_status, actor=None, expected_version=version, reason="table test"
            )
        # The message names both states, and nothing changed.
        assert from_status in excinfo.value.message and to_status in excinfo.value.message
        task.refresh_from_db()
        assert (task.status, task.version) == (from_status, version)
        assert TaskEvent.objects.filter(task=task).count() == events_before


@pytest.mark.parametrize("user", ["coordinator", "wound_nurse"])
def test_nobody_marks_a_task_missed_by_hand_only_the_system_does(task, request, user) -> None:
    actor = request.getfixturevalue(user)
    if user == "wound_nurse":  # on the team and holding the task: may complete it, still not mark it missed
        CareTeamMember.objects.create(
            enrollment=task.enrollment, user=actor, role="wound_nursing", period_start=task.created_at
        )
        task = task_claim(task_id=task.pk, actor=actor, expected_version=task.version)
    with pytest.raises(NotPermitted):
        task_transition(task_id=task.pk, to_status=S.MISSED, actor=actor, expected_version=task.version, reason="x")
    task.refresh_from_db()
    assert task.status != S.MISSED


def test_a_stale_version_is_refused_and_changes_nothing(task) -> None:
    task_transition(task_id=task.pk, to_status=S.ACCEPTED, actor=None, expected_version=task.version)
    with pytest.raises(StaleVersion, match="version 2, not 1"):
        task_transition(task_id=task.pk, to_status=S.IN_PROGRESS, actor=None, expected_version=1)
    task.refresh_from_db()
    assert (task.status, task.version) == (S.ACCEPTED, 2)


def test_cancel_fail_and_hold_need_a_reason(task) -> None:
    for target in (S.CANCELLED, S.FAILED, S.ON_HOLD):
        with pytest.raises(InvalidInput, match="reason is required"):
            task_transition(task_id=task.pk, to_status=target, actor=None, expected_version=task.version)
    task.refresh_from_db()
    assert task.status == S.REQUESTED and task.version == 1


def test_hold_returns_to_the_state_it_was_held_from(task) -> None:
    task = task_transition(task_id=task.pk, to_status=S.ACCEPTED, actor=None, expected_version=1)
    task = task_transition(task_id=task.pk, to_status=S.IN_PROGRESS, actor=None, expected_version=2)
    task = task_hold(task_id=task.pk, actor=None, expected_version=3, reason="patient in theatre")
    assert (task.status, task.status_before_hold) == (S.ON_HOLD, S.IN_PROGRESS)
    task = task_resume(task_id=task.pk, actor=None, expected_version=4)
    assert (task.status, task.status_before_hold) == (S.IN_PROGRESS, "")
    with pytest.raises(IllegalTransition, match="only an on-hold task"):
        task_resume(task_id=task.pk, actor=None, expected_version=5)


def test_a_wound_nurse_claims_from_the_pool_and_works_the_task_to_completion(task, wound_nurse) -> None:
    CareTeamMember.objects.create(
        enrollment=task.enrollment, user=wound_nurse, role="wound_nursing", period_start=task.created_at
    )
    task = task_claim(task_id=task.pk, actor=wound_nurse, expected_version=1)
    assert (task.status, task.assignee_id) == (S.ACCEPTED, wound_nurse.pk)
    task = task_transition(task_id=task.pk, to_status=S.IN_PROGRESS, actor=wound_nurse, expected_version=2)
    assert task.started_at is not None
    task = task_transition(
        task_id=task.pk,
        to_status=S.COMPLETED,
        actor=wound_nurse,
        expected_version=3,
        outcome="BWAT-CUA 24, photographed",
    )
    assert (task.completed_by, task.outcome) == (wound_nurse, "BWAT-CUA 24, photographed")
    kinds = list(TaskEvent.objects.filter(task=task).values_list("kind", flat=True))
    assert kinds == ["created", "transitioned", "assigned", "transitioned", "transitioned"]


def test_specialists_cannot_assign_or_work_tasks_that_are_not_theirs(task, wound_nurse, nephrologist) -> None:
    CareTeamMember.objects.create(
        enrollment=task.enrollment, user=wound_nurse, role="wound_nursing", period_start=task.created_at
    )
    with pytest.raises(NotPermitted):
        task_assign(task_id=task.pk, assignee=wound_nurse, actor=wound_nurse, expected_version=1)
    # Not on the care team: cannot claim from the pool.
    with pytest.raises(NotPermitted):
        task_claim(task_id=task.pk, actor=nephrologist, expected_version=1)
    # On the team but the task is unassigned: cannot complete it without claiming.
    with pytest.raises(NotPermitted):
        task_transition(task_id=task.pk, to_status=S.ACCEPTED, actor=wound_nurse, expected_version=1)
    task.refresh_from_db()
    assert (task.status, task.assignee_id, task.version) == (S.REQUESTED, None, 1)


def test_coordinator_assigns_only_to_a_user_holding_the_role_at_the_site(
    task, coordinator, wound_nurse, nephrologist, other_site
) -> None:
    with pytest.raises(InvalidInput, match="wound_nursing role"):
        task_assign(task_id=task.pk, assignee=nephrologist, actor=coordinator, expected_version=1)
    elsewhere = UserFactory(roles=["wound_nursing"], sites=[other_site])
    with pytest.raises(InvalidInput, match="site"):
        task_assign(task_id=task.pk, assignee=elsewhere, actor=coordinator, expected_version=1)
    task = task_assign(task_id=task.pk, assignee=wound_nurse, actor=coordinator, expected_version=1)
    assert task.assignee == wound_nurse and task.version == 2
    event = TaskEvent.objects.filter(task=task, kind=TaskEventKind.ASSIGNED).get()
    assert event.data == {"from": None, "to": wound_nurse.pk}


def test_unclaim_returns_the_task_to_the_pool(task, wound_nurse) -> None:
    CareTeamMember.objects.create(
        enrollment=task.enrollment, user=wound_nurse, role="wound_nursing", period_start=task.created_at
    )
    task = task_claim(task_id=task.pk, actor=wound_nurse, expected_version=1)
    task = task_unclaim(task_id=task.pk, actor=wound_nurse, expected_version=2)
    assert (task.status, task.assignee_id) == (S.REQUESTED, None)


def test_completing_a_prerequisite_releases_the_waiting_task(pathway, coordinator, site) -> None:
    import datetime as dt

    from pathways.models import Schedule
    from pathways.services.schedules import schedule_materialize

    patient = PatientFactory(site=site)
    now = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=now)
    schedule = Schedule.objects.select_related("task_template", "enrollment__patient__site").get(
        enrollment=enrollment, task_template__code="debridement-decision"
    )
    [debridement] = schedule_materialize(schedule=schedule, until=now + dt.timedelta(days=2), now=now)
    assert debridement.blocked_by == ["wound-assessment"]

    wound = Task.objects.get(enrollment=enrollment, template__code="wound-assessment")
    task_transition(task_id=wound.pk, to_status=S.ACCEPTED, actor=None, expected_version=1)
    task_transition(task_id=wound.pk, to_status=S.COMPLETED, actor=None, expected_version=2)
    debridement.refresh_from_db()
    assert debridement.blocked_by == []
    assert TaskEvent.objects.filter(task=debridement, kind=TaskEventKind.UNBLOCKED).count() == 1
