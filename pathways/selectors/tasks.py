"""Task reads: the scoped task list and a user's work queue, in the order people work them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from pathways.choices import PRIORITY_RANK
from pathways.domain.units import is_plain_id
from pathways.models import Enrollment, Task, User
from pathways.selectors.access import scope_task_queue, scope_tasks

# stat > asap > urgent > routine, as a sortable number in SQL.
PRIORITY_RANK_SQL = Case(
    *(When(priority=priority, then=Value(rank)) for priority, rank in PRIORITY_RANK.items()),
    default=Value(0),
    output_field=IntegerField(),
)


# Every task column, and of the joined rows only what the task serializer shows (the patient id, the template
# code): the enrollment's and template's other columns are JSON documents and long texts that cost time to
# fetch and decode on every row of every page (docs/benchmarks.md, "Pages").
_TASK_COLUMNS = tuple(f.name for f in Task._meta.concrete_fields)


def _with_related(qs: QuerySet[Task]) -> QuerySet[Task]:
    # Everything the task serializer touches, in the same query (no N+1 on list endpoints); the pinned pathway
    # version's standing precautions (a short list) are shown on the tasks of the roles they name.
    return qs.select_related("enrollment__template", "template").only(
        *_TASK_COLUMNS, "enrollment__patient", "enrollment__template__precautions", "template__code"
    )


def task_list(*, user: User, patient_id: int | None = None, own: bool = False) -> QuerySet[Task]:
    """Every task the user may see, most urgent first (priority, then due time); with `patient_id`, only that
    patient's (narrowed inside the scope, so the list reads that patient's tasks, not the user's whole scope);
    with `own`, only those assigned to the user (scope_tasks: a specialist's pools are not read)."""
    enrollments = None if patient_id is None else Enrollment.objects.filter(patient_id=patient_id).values("pk")
    return (
        _with_related(scope_tasks(user, enrollments=enrollments, own=own))
        .annotate(priority_rank=PRIORITY_RANK_SQL)
        .order_by("-priority_rank", "due_at", "pk")
    )


def task_list_for_query(*, user: User, query: Mapping[str, str]) -> QuerySet[Task]:
    """task_list narrowed as a list request's query asks, before its filters run (they still apply and validate):
    `patient` (a plain id) to that patient's tasks, `assignee=me` to the user's own. `query`: the request's
    parameters (a QueryDict: the last value of each)."""
    patient = query.get("patient", "")
    return task_list(
        user=user,
        patient_id=int(patient) if is_plain_id(patient, 17) else None,
        own=query.get("assignee", "").strip() == "me",
    )


def task_queue_for_user(*, user: User, now: dt.datetime | None = None) -> QuerySet[Task]:
    """The user's work (access.scope_task_queue): open tasks assigned to them plus the open pools of the roles
    they hold on the care teams they belong to. Overdue first, then by priority, then by due time. Its cost
    follows the user's own memberships and tasks, not the network's open work (docs/benchmarks.md)."""
    now = now or timezone.now()
    return (
        _with_related(scope_task_queue(user))
        .annotate(
            priority_rank=PRIORITY_RANK_SQL,
            overdue_rank=Case(When(due_at__lt=now, then=Value(1)), default=Value(0), output_field=IntegerField()),
        )
        .order_by("-overdue_rank", "-priority_rank", "due_at", "pk")
    )
