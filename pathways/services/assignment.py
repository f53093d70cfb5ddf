"""Bulk assignment from the coordinators' assignment board: several pool tasks to one person, all or nothing."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from pathways.errors import InvalidInput, NotFound, StaleVersion
from pathways.models import CareTeamMember, Task, TaskEvent, User
from pathways.services.tasks import task_assign

MAX_BULK = 200


@transaction.atomic
def tasks_assign_bulk(
    *,
    versions: dict[int, int],
    assignee: User,
    actor: User | None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> list[Task]:
    """Assign every task in `versions` ({task id: the version the caller read}) to `assignee`, in one transaction.

    Each task goes through task_assign (role, site, permission and version checks). The assignee must also be a
    current member of each task's care team: a task assigned to someone off the team would leave their queue
    (scope_tasks) and could not be worked. Any failure undoes the whole batch. Raises InvalidInput (empty or
    oversized batch, assignee off the team), NotFound, NotPermitted, IllegalTransition, and StaleVersion whose
    message names the task, who changed it last and when (UTC). Returns the assigned tasks, in id order.
    """
    if not versions:
        raise InvalidInput("choose at least one task", fields={"tasks": ["required"]})
    if len(versions) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} tasks at a time", fields={"tasks": [f"at most {MAX_BULK}"]})
    now = now or timezone.now()
    # Ids in ascending order: two bulk assignments over overlapping tasks lock them in the same order.
    ordered = sorted(versions)
    found = dict(Task.objects.select_for_update(of=("self",)).filter(pk__in=ordered).values_list("pk", "enrollment_id"))
    missing = [pk for pk in ordered if pk not in found]
    if missing:
        raise NotFound(f"task {missing[0]} not found")
    on_team = set(
        CareTeamMember.objects.filter(
            user=assignee, period_end__isnull=True, enrollment_id__in=set(found.values())
        ).values_list("enrollment_id", flat=True)
    )
    assigned = []
    for task_id in ordered:
        if found[task_id] not in on_team:
            raise InvalidInput(
                f"task {task_id}: {assignee.username} is not on this patient's care team; add them first",
                fields={"assignee": ["not on the care team"]},
            )
        try:
            assigned.append(
                task_assign(
                    task_id=task_id,
                    assignee=assignee,
                    actor=actor,
                    expected_version=versions[task_id],
                    reason=reason,
                    now=now,
                )
            )
        except StaleVersion:
            raise StaleVersion(_changed_by(task_id) + "; nothing was assigned") from None
    return assigned


def _changed_by(task_id: int) -> str:
    last = TaskEvent.objects.filter(task_id=task_id).select_related("actor").order_by("-at", "-pk").first()
    task = Task.objects.only("title").get(pk=task_id)
    if last is None:
        return f"task {task_id} ({task.title}) changed since you loaded it"
    who = last.actor.username if last.actor else "the system"
    return f"task {task_id} ({task.title}) was changed by {who} at {last.at:%Y-%m-%d %H:%M} UTC"
