"""Task writes. `_apply_change` is the one function that changes a task's status or assignee; the status itself is
set only by `_transition`, which it (and the bulk `tasks_close_missed`) calls after locking the rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from pathways.choices import OPEN_TASK_STATUSES, TaskEventKind, TaskStatus
from pathways.domain import instants
from pathways.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted, StaleVersion
from pathways.models import Task, TaskEvent, User
from pathways.selectors.access import can_act_on_task
from pathways.services.notifications import notify_task_assigned
from pathways.services.rows import rows_update
from pathways.services.schedules import schedule_on_task_closed, schedule_on_task_completed

S = TaskStatus

# Allowed moves. On-hold returns to the status it was held from (see task_resume). Terminal states can
# only be corrected to entered-in-error.
# Missed: workable session-bound work whose window ended (the expiry sweep, actor None). A held task is not
# missed: the hold was a decision, and releasing it decides what becomes of the occurrence.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.REQUESTED: frozenset({S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD, S.CANCELLED, S.FAILED, S.MISSED, S.ENTERED_IN_ERROR}),
    S.ACCEPTED: frozenset(
        {S.REQUESTED, S.IN_PROGRESS, S.COMPLETED, S.ON_HOLD, S.CANCELLED, S.FAILED, S.MISSED, S.ENTERED_IN_ERROR}
    ),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.ON_HOLD, S.CANCELLED, S.FAILED, S.MISSED, S.ENTERED_IN_ERROR}),
    S.ON_HOLD: frozenset({S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS, S.CANCELLED, S.FAILED, S.ENTERED_IN_ERROR}),
    S.COMPLETED: frozenset({S.ENTERED_IN_ERROR}),
    S.CANCELLED: frozenset({S.ENTERED_IN_ERROR}),
    S.FAILED: frozenset({S.ENTERED_IN_ERROR}),
    S.MISSED: frozenset({S.ENTERED_IN_ERROR}),
    S.ENTERED_IN_ERROR: frozenset(),
}

# The permission each target status needs (see selectors.access.can_act_on_task).
ACTION_FOR_STATUS: dict[str, str] = {
    S.ACCEPTED: "accept",
    S.IN_PROGRESS: "start",
    S.COMPLETED: "complete",
    S.ON_HOLD: "hold",
    S.CANCELLED: "cancel",
    S.FAILED: "fail",
    # No role holds "miss" (selectors/access.py): only the system closes work as missed.
    S.MISSED: "miss",
    S.ENTERED_IN_ERROR: "entered-in-error",
    S.REQUESTED: "unclaim",
}

REASON_REQUIRED = frozenset({S.ON_HOLD, S.CANCELLED, S.FAILED, S.MISSED, S.ENTERED_IN_ERROR})
# FHIR Task.statusReason of a missed task (pathways/fhir/): its window ended before it was done.
MISSED_REASON = "missed"

_UNSET: Any = object()


@dataclass
class TaskChange:
    """A change to an existing (locked) task: the fields set on the instance, and the events that record it.

    `fields` empty means nothing on the row changed (e.g. a rule fired again and links its reason to the task):
    the events are written and the version stays.
    """

    task: Task
    fields: set[str] = field(default_factory=set)
    events: list[TaskEvent] = field(default_factory=list)


def task_changes_record(changes: Sequence[TaskChange]) -> None:
    """The one writer of task versions and TaskEvents for existing tasks. Caller holds the locks and transaction.

    Each changed row gets `version` + 1 and is saved with exactly its changed fields; all the events are
    inserted in one statement. The transition function, prerequisite release, escalation and rules all come
    here, so "who bumped this version, and where is it recorded?" has one answer.
    """
    events: list[TaskEvent] = []
    groups: dict[tuple[str, ...], list[Task]] = {}
    for change in changes:
        if change.fields:
            change.task.version += 1
            groups.setdefault(tuple(sorted({*change.fields, "version", "updated_at"})), []).append(change.task)
        events += change.events
    for fields, tasks in groups.items():
        _tasks_save(tasks, fields)
    TaskEvent.objects.bulk_create(events)


def _tasks_save(tasks: list[Task], fields: tuple[str, ...]) -> None:
    """Save `fields` of each of `tasks` (the same fields for all): one statement for several rows (rows_update: a
    sweep closing a batch of missed sessions wrote them one statement each), save(update_fields=…) for one."""
    if len(tasks) == 1:
        tasks[0].save(update_fields=list(fields))
        return
    now = timezone.now()
    for task in tasks:
        task.updated_at = now  # what auto_now sets on save()
    rows_update(tasks, fields)


def tasks_for_update(qs: QuerySet[Task]) -> QuerySet[Task]:
    """`qs` as a change reads its rows: each task row locked (`FOR UPDATE` of the task only), with what the
    transition function, the permission check and the task serializer read (the enrollment, its patient and
    pinned pathway version, the template). A view that looks a task up in the user's scope this way, and hands
    the row to a service as `locked`, takes one lock and one read per change (issue 15)."""
    return qs.select_for_update(of=("self",)).select_related("enrollment__patient", "enrollment__template", "template")


def _lock(task_id: int, locked: Task | None = None) -> Task:
    if locked is not None and locked.pk == task_id:
        return locked
    try:
        return tasks_for_update(Task.objects.all()).get(pk=task_id)
    except Task.DoesNotExist as exc:
        raise NotFound(f"task {task_id} not found") from exc


def _transition(
    task: Task,
    *,
    to_status: str,
    actor: User | None,
    reason: str,
    now: dt.datetime,
    outcome: str = "",
    data: dict[str, Any] | None = None,
    hold_until: dt.datetime | None = None,
) -> TaskChange:
    """Check the transition table and set the new status on a locked task (unsaved): the one place that does.

    Returns the change (fields and the 'transitioned' event) for task_changes_record. Raises InvalidInput for an
    unknown status or a missing reason, IllegalTransition for a move the table does not allow.
    """
    from_status = task.status
    if to_status not in TRANSITIONS:
        raise InvalidInput(f"unknown task status {to_status!r}", fields={"status": ["unknown status"]})
    if to_status not in TRANSITIONS[from_status]:
        raise IllegalTransition(f"a task cannot go from {from_status} to {to_status}")
    if to_status in REASON_REQUIRED and not reason.strip():
        raise InvalidInput(f"a reason is required to move a task to {to_status}", fields={"reason": ["required"]})
    fields: set[str] = {"status"}
    task.status = to_status
    if to_status == S.ON_HOLD:
        task.status_before_hold, task.hold_until = from_status, hold_until
        fields |= {"status_before_hold", "hold_until"}
    elif from_status == S.ON_HOLD:
        task.status_before_hold, task.hold_until = "", None
        fields |= {"status_before_hold", "hold_until"}
    if to_status == S.IN_PROGRESS and task.started_at is None:
        task.started_at = now
        fields.add("started_at")
    if to_status == S.COMPLETED:
        task.completed_at, task.completed_by, task.outcome = now, actor, outcome
        fields |= {"completed_at", "completed_by", "outcome"}
    event = TaskEvent(
        task=task,
        kind=TaskEventKind.TRANSITIONED,
        at=now,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data={**(data or {}), **({"outcome": outcome} if outcome else {})},
    )
    return TaskChange(task, fields, [event])


def _apply_change(
    *,
    task_id: int,
    actor: User | None,
    expected_version: int | None,
    action: str,
    to_status: str | None = None,
    assignee: User | None = _UNSET,
    reason: str = "",
    outcome: str = "",
    data: dict[str, Any] | None = None,
    hold_until: dt.datetime | None = None,
    now: dt.datetime | None = None,
    locked: Task | None = None,
) -> Task:
    """Lock the row, check version, transition table and permission, write the change and its TaskEvents.
    `locked`: the row as the calling service already locked it in this transaction (one row lock per
    transition: a second SELECT … FOR UPDATE of the same row only costs a round trip, issue 15)."""
    now = now or timezone.now()
    task = _lock(task_id, locked)
    if expected_version is not None and task.version != expected_version:
        raise StaleVersion(
            f"task {task.pk} is at version {task.version}, not {expected_version}: reload it and try again"
        )
    if not can_act_on_task(actor, task, action):
        raise NotPermitted(f"you may not {action} this task")
    from_status = task.status
    change = TaskChange(task)
    if to_status is not None:
        change = _transition(
            task,
            to_status=to_status,
            actor=actor,
            reason=reason,
            outcome=outcome,
            data=data,
            hold_until=hold_until,
            now=now,
        )
    events, fields = change.events, change.fields

    if assignee is not _UNSET and (assignee.pk if assignee else None) != task.assignee_id:
        previous = task.assignee_id
        task.assignee = assignee
        fields.add("assignee")
        events.append(
            TaskEvent(
                task=task,
                kind=TaskEventKind.ASSIGNED if assignee else TaskEventKind.UNASSIGNED,
                at=now,
                actor=actor,
                reason=reason,
                data={"from": previous, "to": assignee.pk if assignee else None},
            )
        )

    if not events:
        return task
    task_changes_record([TaskChange(task, fields, events)])
    if to_status == S.COMPLETED:
        _after_completion(task, now=now, actor=actor)
    elif to_status in _CLOSED_UNDONE and from_status in OPEN_TASK_STATUSES and task.schedule_id is not None:
        schedule_on_task_closed(schedule_id=task.schedule_id, occurrence=task.occurrence, closed_at=now)
    if assignee is not _UNSET and assignee is not None and assignee != actor and task.assignee_id == assignee.pk:
        notify_task_assigned(task=task, now=now)
    return task


# An open occurrence closed without being done: an after-completion schedule must not stall on it.
_CLOSED_UNDONE = frozenset({S.CANCELLED, S.FAILED, S.MISSED, S.ENTERED_IN_ERROR})


def _after_completion(task: Task, *, now: dt.datetime, actor: User | None) -> None:
    """Completion moves an after-completion schedule and releases tasks waiting for this template."""
    if task.schedule_id is not None:
        schedule_on_task_completed(schedule_id=task.schedule_id, completed_at=now)
    if task.template is None:
        return
    code = task.template.code
    # Few open tasks per enrollment wait at all; filter the JSON list in Python (portable to SQLite).
    waiting = (
        Task.objects.select_for_update()
        .filter(enrollment_id=task.enrollment_id, status__in=OPEN_TASK_STATUSES)
        .exclude(blocked_by=[])
    )
    released = []
    for other in waiting:
        if code not in other.blocked_by:
            continue
        other.blocked_by = [c for c in other.blocked_by if c != code]
        event = TaskEvent(
            task=other,
            kind=TaskEventKind.UNBLOCKED,
            at=now,
            actor=actor,
            data={"prerequisite": code, "by_task": task.pk, "still_waiting_for": other.blocked_by},
        )
        released.append(TaskChange(other, {"blocked_by"}, [event]))
    task_changes_record(released)


# --- public services ---------------------------------------------------------------------------------


@transaction.atomic
def task_transition(
    *,
    task_id: int,
    to_status: str,
    actor: User | None,
    expected_version: int | None,
    reason: str = "",
    outcome: str = "",
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    locked: Task | None = None,
) -> Task:
    """Move a task to `to_status` (accept, start, complete, cancel, fail, entered-in-error). `locked`, here and
    in the other task services: the row as the caller read it with `tasks_for_update` in this transaction."""
    if to_status == S.ON_HOLD:
        return task_hold(
            task_id=task_id, actor=actor, expected_version=expected_version, reason=reason, now=now, locked=locked
        )
    action = ACTION_FOR_STATUS.get(to_status, to_status)
    return _apply_change(
        task_id=task_id,
        actor=actor,
        expected_version=expected_version,
        action=action,
        to_status=to_status,
        reason=reason,
        outcome=outcome,
        data=data,
        now=now,
        locked=locked,
    )


@transaction.atomic
def task_hold(
    *,
    task_id: int,
    actor: User | None,
    expected_version: int | None,
    reason: str,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
    locked: Task | None = None,
) -> Task:
    """Put an open task on hold, optionally until a time; it resumes to the status it was held from."""
    if until is not None:
        instants.check_hold_until(until, now=now or timezone.now())
    return _apply_change(
        task_id=task_id,
        actor=actor,
        expected_version=expected_version,
        action="hold",
        to_status=S.ON_HOLD,
        reason=reason,
        hold_until=until,
        data={"until": until.isoformat()} if until else None,
        now=now,
        locked=locked,
    )


@transaction.atomic
def task_resume(
    *,
    task_id: int,
    actor: User | None,
    expected_version: int | None,
    now: dt.datetime | None = None,
    locked: Task | None = None,
) -> Task:
    """Return a held task to the status it was held from."""
    task = _lock(task_id, locked)
    if task.status != S.ON_HOLD:
        raise IllegalTransition(f"only an on-hold task can be resumed; this one is {task.status}")
    return _apply_change(
        task_id=task_id,
        actor=actor,
        expected_version=expected_version,
        action="resume",
        to_status=task.status_before_hold or S.REQUESTED,
        now=now,
        locked=task,
    )


@transaction.atomic
def task_assign(
    *,
    task_id: int,
    assignee: User | None,
    actor: User | None,
    expected_version: int | None,
    reason: str = "",
    now: dt.datetime | None = None,
    locked: Task | None = None,
) -> Task:
    """Assign an open task to a user (or back to the pool with None); the assignee must hold the task's role."""
    task = _lock(task_id, locked)
    if task.status not in OPEN_TASK_STATUSES:
        raise IllegalTransition(f"a {task.status} task cannot be assigned")
    if assignee is not None:
        if not assignee.is_active or task.role not in (assignee.roles or []):
            raise InvalidInput(
                f"the assignee must be an active user with the {task.role} role",
                fields={"assignee": [f"does not hold the {task.role} role"]},
            )
        if not assignee.sites.filter(pk=task.enrollment.patient.site_id).exists():
            raise InvalidInput(
                "the assignee does not work at this patient's site", fields={"assignee": ["not at this site"]}
            )
    # Reassigning an accepted task returns it to requested: the new assignee has not accepted it.
    to_status = S.REQUESTED if task.status == S.ACCEPTED else None
    return _apply_change(
        task_id=task_id,
        actor=actor,
        expected_version=expected_version,
        action="assign",
        to_status=to_status,
        assignee=assignee,
        reason=reason,
        now=now,
        locked=task,
    )


@transaction.atomic
def task_claim(
    *,
    task_id: int,
    actor: User,
    expected_version: int | None,
    now: dt.datetime | None = None,
    locked: Task | None = None,
) -> Task:
    """Take a task from one's role pool: assign it to oneself and accept it."""
    task = _lock(task_id, locked)
    if task.assignee_id is not None:
        raise IllegalTransition("this task is already assigned; it is no longer in the pool")
    if task.status != S.REQUESTED:
        raise IllegalTransition(f"a task cannot go from {task.status} to {S.ACCEPTED}")
    return _apply_change(
        task_id=task_id,
        actor=actor,
        expected_version=expected_version,
        action="claim",
        to_status=S.ACCEPTED,
        assignee=actor,
        now=now,
        locked=task,
    )


@transaction.atomic
def task_unclaim(
    *,
    task_id: int,
    actor: User,
    expected_version: int | None,
    now: dt.datetime | None = None,
    locked: Task | None = None,
) -> Task:
    """Give one's task back to the role pool (accepted/requested -> requested, unassigned)."""
    task = _lock(task_id, locked)
    to_status = S.REQUESTED if task.status == S.ACCEPTED else None
    if task.status not in (S.REQUESTED, S.ACCEPTED):
        raise IllegalTransition(f"a task cannot go from {task.status} to {S.REQUESTED}")
    return _apply_change(
        task_id=task_id,
        actor=actor,
        expected_version=expected_version,
        action="unclaim",
        to_status=to_status,
        assignee=None,
        now=now,
        locked=task,
    )


def tasks_close_missed(*, tasks: Sequence[Task], now: dt.datetime, reason: str) -> list[Task]:
    """Close locked, workable session-bound tasks as missed (the expiry sweep and catch-up); caller holds the
    locks and the transaction.

    Each goes through `_transition` (the transition table, the reason, the 'transitioned' event with actor None
    and `data.status_reason` "missed"); versions and events are written together by task_changes_record. Tasks
    the table does not let go to missed (held, or closed meanwhile) are left as they are and not returned.
    Expiring templates follow a calendar (services/content.py), so no schedule waits on a missed occurrence.
    """
    changes = []
    for task in tasks:
        if S.MISSED not in TRANSITIONS[task.status]:
            continue
        data = {"status_reason": MISSED_REASON, "expires_at": task.expires_at.isoformat() if task.expires_at else None}
        changes.append(_transition(task, to_status=S.MISSED, actor=None, reason=reason, data=data, now=now))
    task_changes_record(changes)
    return [change.task for change in changes]
