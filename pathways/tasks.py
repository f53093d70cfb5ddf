"""Thin Celery tasks: each takes ids (or nothing), calls one service, and is safe to run twice.

The sweeps are started by Celery beat (schedule in carepath/celery.py) and stop starting new batches before
the soft time limit; whatever is left is picked up by the next tick.
"""

from __future__ import annotations

import smtplib

from celery import shared_task

from pathways.services.notifications import notification_send_email
from pathways.services.sweeps import (
    notifications_email_unsent,
    schedules_materialize_due,
    tasks_escalate_overdue,
    tasks_expire_missed,
    tasks_remind_due_soon,
)

# Stop starting batches well inside CELERY_TASK_SOFT_TIME_LIMIT (240 s); the next tick continues.
SWEEP_BUDGET_SECONDS = 50.0


@shared_task(name="carepath.sweep_materialize")
def sweep_materialize() -> dict[str, object]:
    """Create the tasks of every occurrence due within the look-ahead horizon."""
    return schedules_materialize_due(max_seconds=SWEEP_BUDGET_SECONDS).as_dict()


@shared_task(name="carepath.sweep_expire")
def sweep_expire() -> dict[str, object]:
    """Close session-bound work still open at the end of its window as missed."""
    return tasks_expire_missed(max_seconds=SWEEP_BUDGET_SECONDS).as_dict()


@shared_task(name="carepath.sweep_escalate")
def sweep_escalate() -> dict[str, object]:
    """Escalate overdue tasks (once, then once more past the second threshold)."""
    return tasks_escalate_overdue(max_seconds=SWEEP_BUDGET_SECONDS).as_dict()


@shared_task(name="carepath.sweep_remind")
def sweep_remind() -> dict[str, object]:
    """Remind the assignee or role pool of work that comes due soon."""
    return tasks_remind_due_soon(max_seconds=SWEEP_BUDGET_SECONDS).as_dict()


@shared_task(name="carepath.sweep_email")
def sweep_email() -> dict[str, object]:
    """Send the e-mail of every unsent, retryable notification (the outbox; runs on the `email` queue)."""
    return notifications_email_unsent(max_seconds=SWEEP_BUDGET_SECONDS).as_dict()


# SMTP and network errors are transient: retry with exponential backoff (1 s, 2 s, 4 s ... capped at 10 min,
# jittered) up to 8 times. Anything else is a bug and is not retried.
# https://docs.celeryq.dev/en/stable/userguide/tasks.html#automatic-retry-for-known-exceptions
@shared_task(
    name="carepath.send_notification_email",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def send_notification_email(notification_id: int) -> str:
    """E-mail one notification; returns early if it was already sent."""
    return notification_send_email(notification_id=notification_id)
