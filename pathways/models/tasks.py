"""Schedules, tasks, their append-only events, and notifications about them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from pathways.choices import (
    OPEN_TASK_STATUSES,
    NotificationKind,
    Priority,
    Prong,
    Role,
    ScheduleStatus,
    TaskEventKind,
    TaskStatus,
)

OPEN_Q = Q(status__in=OPEN_TASK_STATUSES)


class Schedule(models.Model):
    """What comes next for one recurring or deferred task template of one enrollment.

    The row, not the broker, is the source of truth: the materializer sweep turns due occurrences
    into Task rows and moves `next_due_at` on.
    """

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.CASCADE, related_name="schedules")
    task_template = models.ForeignKey("pathways.TaskTemplate", on_delete=models.PROTECT, related_name="schedules")
    status = models.CharField(max_length=16, choices=ScheduleStatus.choices, default=ScheduleStatus.ACTIVE)
    # Time recurrence is reckoned from (the enrollment time, or the resume time after a hold).
    anchor_at = models.DateTimeField()
    # Start (not-before) of the next occurrence; null while waiting for a completion, or when finished.
    next_due_at = models.DateTimeField(null=True, blank=True)
    occurrences_made = models.PositiveIntegerField(default=0)
    skipped_occurrences = models.PositiveIntegerField(default=0)
    last_completed_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Why it is paused when the enrollment itself is not on hold (a safety rule held it).
    pause_reason = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["enrollment", "task_template__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "task_template"], name="%(app_label)s_%(class)s_unique_per_enrollment"
            ),
        ]
        indexes = [
            # The materializer's only query: active schedules whose next occurrence falls in the horizon.
            models.Index(fields=["next_due_at"], name="pathways_sched_due", condition=Q(status=ScheduleStatus.ACTIVE)),
        ]

    def __str__(self) -> str:
        return f"schedule {self.pk} ({self.task_template_id})"


class Task(models.Model):
    """One piece of work for a role or a person (FHIR Task)."""

    enrollment = models.ForeignKey("pathways.Enrollment", on_delete=models.PROTECT, related_name="tasks")
    template = models.ForeignKey(
        "pathways.TaskTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="tasks"
    )
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, null=True, blank=True, related_name="tasks")
    occurrence = models.PositiveIntegerField(null=True, blank=True)
    # Set when a rule created the task (its code), for dedupe of repeated firings.
    rule_code = models.SlugField(max_length=64, blank=True)
    title = models.CharField(max_length=255)
    prong = models.CharField(max_length=32, choices=Prong.choices)
    role = models.CharField(max_length=32, choices=Role.choices)
    assignee = models.ForeignKey(
        "pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="assigned_tasks"
    )
    status = models.CharField(max_length=20, choices=TaskStatus.choices, default=TaskStatus.REQUESTED)
    # The status a held task returns to on resume.
    status_before_hold = models.CharField(max_length=20, choices=TaskStatus.choices, blank=True)
    hold_until = models.DateTimeField(null=True, blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    available_at = models.DateTimeField()
    due_at = models.DateTimeField()
    # End of a session-bound occurrence's window (template.expires_after_hours after available_at): still open
    # then, the expiry sweep closes it as missed. Null for work that never expires.
    expires_at = models.DateTimeField(null=True, blank=True)
    # Template codes whose completion this task still waits for; empty means prerequisites are met.
    blocked_by = models.JSONField(default=list, blank=True)
    instructions = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    outcome = models.TextField(blank=True)
    # Optimistic concurrency: every change bumps it; writers must present the version they read.
    version = models.PositiveIntegerField(default=1)
    # 0 = not escalated, 1 = escalated once (overdue), 2 = priority raised (still open past the 2nd threshold).
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_at", "pk"]
        constraints = [
            # Makes materialization idempotent: an occurrence can exist only once.
            models.UniqueConstraint(
                fields=["schedule", "occurrence"], name="%(app_label)s_%(class)s_unique_schedule_occurrence"
            ),
            models.CheckConstraint(
                condition=Q(schedule__isnull=True, occurrence__isnull=True)
                | Q(schedule__isnull=False, occurrence__isnull=False),
                name="%(app_label)s_%(class)s_occurrence_with_schedule",
            ),
            models.CheckConstraint(
                condition=Q(status__in=TaskStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(due_at__gte=models.F("available_at")), name="%(app_label)s_%(class)s_due_after_available"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gte=models.F("due_at")),
                name="%(app_label)s_%(class)s_expires_after_due",
            ),
        ]
        indexes = [
            # "My queue": open tasks assigned to a user, soonest due first.
            models.Index(fields=["assignee", "due_at"], name="pathways_task_my_queue", condition=OPEN_Q),
            # "Role pool": open unassigned tasks of a role within an enrollment. The queue reaches it from the
            # user's live memberships, one (enrollment, role) at a time (selectors.access, issue 15).
            models.Index(
                fields=["enrollment", "role", "due_at"],
                name="pathways_task_role_pool",
                condition=OPEN_Q & Q(assignee__isnull=True),
            ),
            # The same for pool lists over every status (`tasks/?pool=true`, claims): unassigned tasks of a role
            # within an enrollment, open or closed, so a specialist's scope never reads their teams' other tasks.
            models.Index(
                fields=["enrollment", "role"], name="pathways_task_pool_any", condition=Q(assignee__isnull=True)
            ),
            # A user's own tasks on one enrollment: the assigned branch of a specialist's scope checks each of
            # their care teams (or each of their tasks) with both columns in the index condition, whichever way
            # PostgreSQL drives it, instead of reading every task of the team (issue 15).
            models.Index(fields=["assignee", "enrollment"], name="pathways_task_assignee_enr"),
            # "Overdue" and the escalation sweep: open tasks by due time. It carries the enrollment and the prong
            # so a count of open overdue work ("overdue=true&prong=…", a coordinator's list) reads this index
            # alone: without them PostgreSQL preferred the report index below, whose entries are every task ever
            # due (a history of 1M tasks read to count a site's 318: 256 ms at 100,000 open tasks, issue 15).
            models.Index(
                fields=["due_at"], include=["enrollment", "prong"], name="pathways_task_open_due", condition=OPEN_Q
            ),
            # Adherence reports: every task due in a window, whatever its status. It carries every column the
            # report queries read, so they scan this index alone (index-only, in parallel), not the wide rows
            # (0005 replaced 0004's plain due_at index; docs/benchmarks.md, "Adherence"). Nothing more: 0008
            # dropped id (the reports count rows, COUNT(*)) and started_at (first action reads FirstAction),
            # a narrower index being a faster scan.
            models.Index(
                fields=["due_at"],
                include=["enrollment", "prong", "role", "status", "completed_at", "template", "escalation_level"],
                name="pathways_task_report",
            ),
            models.Index(fields=["enrollment", "status"], name="pathways_task_enr_status"),
            # The expiry sweep's only query: open session-bound tasks by the end of their window.
            models.Index(
                fields=["expires_at"],
                name="pathways_task_open_expiry",
                condition=OPEN_Q & Q(expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.status})"


class FirstAction(models.Model):
    """The earliest action time of an enrollment's tasks of one (prong, role, template): the first time such a
    task was started or completed, `COALESCE(started_at, completed_at)`.

    Derived data, never written by the application: triggers on pathways_task (migration 0006) keep it, lowering
    `at` when a task of the group is inserted with an action time or is given an earlier one; a later action
    never raises it. The adherence report's "time from enrolment to first action" aggregates these few rows per
    enrollment instead of every task. Only action times are watched: the application never deletes a task, moves
    it to another group or moves its action time later; an out-of-band edit doing so leaves the row as it was.
    """

    # No index of its own: the unique constraint below leads with enrollment_id and serves the join and the
    # cascade; one index less for the trigger to maintain.
    enrollment = models.ForeignKey(
        "pathways.Enrollment", on_delete=models.CASCADE, related_name="first_actions", db_index=False
    )
    prong = models.CharField(max_length=32, choices=Prong.choices)
    role = models.CharField(max_length=32, choices=Role.choices)
    # The task's template code; "" for tasks without a template (ad hoc).
    template_code = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "prong", "role", "template_code"], name="%(app_label)s_%(class)s_unique_group"
            ),
        ]

    def __str__(self) -> str:
        return f"first action of enrollment {self.enrollment_id} ({self.prong}, {self.role}, {self.template_code})"


class TaskEvent(models.Model):
    """Append-only history of a task: creation, assignment, transitions, escalation."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20, choices=TaskEventKind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    from_status = models.CharField(max_length=20, choices=TaskStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=TaskStatus.choices, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["task", "at"], name="pathways_taskevent_task_at")]

    def __str__(self) -> str:
        return f"{self.kind} on task {self.task_id}"


class Notification(models.Model):
    """An in-app message to one user about a task; e-mailed once, from the outbox (docs/operations.md)."""

    user = models.ForeignKey("pathways.User", on_delete=models.CASCADE, related_name="notifications")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    message = models.CharField(max_length=500)
    # One notification per (user, event): re-running a sweep cannot notify twice.
    dedupe_key = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    # The e-mail outbox (docs/operations.md): after a failed attempt the e-mail sweep waits until then.
    email_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedupe_key"], name="%(app_label)s_%(class)s_unique_user_dedupe_key"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "read_at"], name="pathways_notif_user_unread"),
            # The e-mail sweep reads only the unsent rows, oldest first; sent ones drop out of this index.
            models.Index(fields=["created_at"], condition=Q(emailed_at__isnull=True), name="pathways_notif_unsent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.user_id}"
