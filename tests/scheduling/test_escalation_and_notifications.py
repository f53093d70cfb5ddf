"""Escalation (once, then priority raised) and notifications (in-app once per event, e-mailed once)."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
from django.core import mail
from django.test import override_settings

from pathways.choices import NotificationKind, Priority, Role, TaskEventKind, TaskStatus
from pathways.models import Notification, Task, TaskEvent
from pathways.services.enrollment import care_team_add
from pathways.services.notifications import notification_send_email
from pathways.services.sweeps import tasks_escalate_overdue, tasks_remind_due_soon
from pathways.services.tasks import task_assign, task_claim, task_hold
from tests.factories import PatientFactory, UserFactory
from tests.scheduling.conftest import MONDAY, tasks_of

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def team(enroll, site, coordinator, wound_nurse):
    """An enrollment with a coordinator, two wound nurses on the care team, and its day-0 tasks."""
    second_nurse = UserFactory(username="wound2", roles=[Role.WOUND_NURSING], sites=[site])
    enrollment = enroll(PatientFactory(site=site))
    for nurse in (wound_nurse, second_nurse):
        care_team_add(enrollment_id=enrollment.pk, user=nurse, role=Role.WOUND_NURSING, actor=coordinator, now=MONDAY)
    return enrollment, second_nurse


def _dressing(enrollment) -> Task:
    return tasks_of(enrollment, "dressing-change")[0]  # due 6 h after enrolment


def _notes(task: Task, kind: str) -> set[int]:
    return set(Notification.objects.filter(task=task, kind=kind).values_list("user_id", flat=True))


def test_an_overdue_task_is_escalated_once_to_the_pool_and_the_coordinator(team, coordinator, wound_nurse) -> None:
    enrollment, second_nurse = team
    task = _dressing(enrollment)
    first = tasks_escalate_overdue(now=task.due_at + HOUR)
    again = tasks_escalate_overdue(now=task.due_at + 2 * HOUR)

    task.refresh_from_db()
    assert task.escalation_level == 1 and task.escalated_at == task.due_at + HOUR
    assert task.priority == Priority.ROUTINE
    assert TaskEvent.objects.filter(task=task, kind=TaskEventKind.ESCALATED).count() == 1
    assert _notes(task, NotificationKind.OVERDUE) == {wound_nurse.pk, second_nurse.pk}
    assert _notes(task, NotificationKind.ESCALATED) == {coordinator.pk}
    assert first.details["level_1"] >= 1 and again.details["level_1"] == 0
    assert again.notifications == 0


def test_still_open_past_the_second_threshold_raises_priority_and_tells_the_coordinator_again(
    team, coordinator
) -> None:
    enrollment, _ = team
    task = _dressing(enrollment)
    tasks_escalate_overdue(now=task.due_at + HOUR)
    version = Task.objects.get(pk=task.pk).version
    tasks_escalate_overdue(now=task.due_at + 25 * HOUR)
    tasks_escalate_overdue(now=task.due_at + 26 * HOUR)

    task.refresh_from_db()
    assert task.escalation_level == 2
    assert task.priority == Priority.URGENT
    assert task.version == version + 1
    [raised] = TaskEvent.objects.filter(task=task, kind=TaskEventKind.UPDATED)
    assert raised.data == {"priority": {"from": "routine", "to": "urgent"}}
    assert TaskEvent.objects.filter(task=task, kind=TaskEventKind.ESCALATED).count() == 2
    assert Notification.objects.filter(task=task, kind=NotificationKind.ESCALATED, user=coordinator).count() == 2


def test_a_task_found_long_overdue_reaches_level_two_in_one_sweep(team) -> None:
    enrollment, _ = team
    task = _dressing(enrollment)
    tasks_escalate_overdue(now=task.due_at + 48 * HOUR)
    task.refresh_from_db()
    assert task.escalation_level == 2
    assert list(
        TaskEvent.objects.filter(task=task, kind=TaskEventKind.ESCALATED).values_list("data__level", flat=True)
    ) == [1, 2]


def test_assigned_work_notifies_the_assignee_not_the_pool(team, coordinator, wound_nurse) -> None:
    enrollment, second_nurse = team
    task = _dressing(enrollment)
    task_assign(task_id=task.pk, assignee=second_nurse, actor=coordinator, expected_version=None, now=MONDAY)
    assert _notes(task, NotificationKind.ASSIGNED) == {second_nurse.pk}
    tasks_escalate_overdue(now=task.due_at + HOUR)
    assert _notes(task, NotificationKind.OVERDUE) == {second_nurse.pk}


def test_claiming_a_task_does_not_notify_oneself(team, wound_nurse) -> None:
    enrollment, _ = team
    task = _dressing(enrollment)
    task_claim(task_id=task.pk, actor=wound_nurse, expected_version=None, now=MONDAY)
    assert not Notification.objects.filter(task=task).exists()


def test_held_and_blocked_tasks_are_not_escalated(team, coordinator) -> None:
    enrollment, _ = team
    task = _dressing(enrollment)
    task_hold(task_id=task.pk, actor=coordinator, expected_version=None, reason="surgery", now=MONDAY)
    Task.objects.filter(enrollment=enrollment).exclude(pk=task.pk).update(blocked_by=["hbot-referral"])
    report = tasks_escalate_overdue(now=MONDAY + 30 * 24 * HOUR)
    assert report.rows == 0
    assert not Task.objects.filter(enrollment=enrollment, escalation_level__gt=0).exists()


def test_due_soon_reminds_the_pool_once(team, wound_nurse) -> None:
    enrollment, second_nurse = team
    task = _dressing(enrollment)  # due at MONDAY + 6 h
    assert tasks_remind_due_soon(now=task.due_at - 3 * HOUR).notifications == 0  # DUE_SOON_HOURS is 2
    first = tasks_remind_due_soon(now=task.due_at - HOUR)
    again = tasks_remind_due_soon(now=task.due_at - HOUR / 2)
    assert _notes(task, NotificationKind.DUE_SOON) == {wound_nurse.pk, second_nurse.pk}
    assert first.notifications >= 2 and again.notifications == 0


def test_a_notification_is_emailed_once_however_often_the_task_runs(team, wound_nurse) -> None:
    enrollment, _ = team
    tasks_escalate_overdue(now=_dressing(enrollment).due_at + HOUR)
    note = Notification.objects.get(user=wound_nurse, kind=NotificationKind.OVERDUE)
    assert notification_send_email(notification_id=note.pk) == "sent"
    assert notification_send_email(notification_id=note.pk) == "already sent"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [wound_nurse.email]
    assert "Dressing change" in mail.outbox[0].body and "Synthetic" not in mail.outbox[0].body  # no patient name
    note.refresh_from_db()
    assert note.emailed_at is not None and note.email_attempts == 1


def test_an_smtp_failure_is_counted_and_raised_for_retry_and_nothing_is_marked_sent(team, wound_nurse) -> None:
    enrollment, _ = team
    tasks_escalate_overdue(now=_dressing(enrollment).due_at + HOUR)
    note = Notification.objects.get(user=wound_nurse, kind=NotificationKind.OVERDUE)
    with (
        override_settings(EMAIL_BACKEND="tests.scheduling.mail_backends.DownSMTPBackend"),
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        notification_send_email(notification_id=note.pk)
    note.refresh_from_db()
    assert note.emailed_at is None and note.email_attempts == 1
    assert notification_send_email(notification_id=note.pk) == "sent"  # the retry succeeds
    note.refresh_from_db()
    assert note.email_attempts == 2


def test_completed_work_is_never_escalated(team, wound_nurse) -> None:
    enrollment, _ = team
    task = _dressing(enrollment)
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.COMPLETED)
    tasks_escalate_overdue(now=task.due_at + 48 * HOUR)
    task.refresh_from_db()
    assert task.escalation_level == 0
