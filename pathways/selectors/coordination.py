"""Reads for the coordinators' pages: the patient registry, the assignment board, the people work can go to."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from pathways.choices import OPEN_TASK_STATUSES, SPECIALIST_ROLES, Role
from pathways.models import CareTeamMember, Enrollment, Patient, Task, User
from pathways.selectors.access import scope_care_team, scope_patients, scope_tasks, scope_users

BOARD_PER_ROLE = 25
BOARD_ASSIGNED = 50


def patient_registry(*, user: User, q: str = "") -> QuerySet[Patient]:
    """Patients the user may see, by family name, each annotated with its latest enrollment's id and status
    (`latest_enrollment_id`, `latest_enrollment_status`, both None when never enrolled). `q` matches MRN or
    names (case-insensitive, every whitespace-separated word must match one of them). One query per page."""
    latest = Enrollment.objects.filter(patient=OuterRef("pk")).order_by("-enrolled_at", "-pk")
    qs = (
        scope_patients(user)
        .select_related("site")
        .annotate(
            latest_enrollment_id=Subquery(latest.values("pk")[:1]),
            latest_enrollment_status=Subquery(latest.values("status")[:1]),
        )
        .order_by("family_name", "given_name", "pk")
    )
    for word in q.split():
        qs = qs.filter(Q(mrn__icontains=word) | Q(given_name__icontains=word) | Q(family_name__icontains=word))
    return qs


@dataclass
class RoleColumn:
    """One role's unassigned open work on the board: the oldest-due tasks (at most BOARD_PER_ROLE), how many
    there are in all, and the people holding the role who may be chosen as assignee."""

    role: str
    tasks: list[Task] = field(default_factory=list)
    total: int = 0
    candidates: list[User] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(dict(Role.choices).get(self.role, self.role))


def assignment_board(*, user: User, patient_id: int | None = None, per_role: int = BOARD_PER_ROLE) -> list[RoleColumn]:
    """Unassigned open work at the user's sites, a column per role (by role name), oldest due first.

    Three queries whatever the number of tasks or roles: the capped rows (a window function numbers each
    role's tasks), the per-role totals, and the candidate assignees (active staff at the user's sites).
    """
    pool = scope_tasks(user).filter(assignee__isnull=True, status__in=OPEN_TASK_STATUSES)
    if patient_id is not None:
        pool = pool.filter(enrollment__patient_id=patient_id)
    rows = list(
        pool.select_related("enrollment__patient__site")
        .annotate(row=Window(RowNumber(), partition_by=[F("role")], order_by=[F("due_at").asc(), F("pk").asc()]))
        .filter(row__lte=per_role)
        .order_by("role", "due_at", "pk")
    )
    totals = dict(pool.order_by().values_list("role").annotate(n=Count("pk")).values_list("role", "n"))
    people = list(scope_users(user).order_by("username"))
    columns = {role: RoleColumn(role=role, total=n) for role, n in sorted(totals.items())}
    for task in rows:
        columns[task.role].tasks.append(task)
    for column in columns.values():
        column.candidates = [p for p in people if column.role in (p.roles or [])]
    return list(columns.values())


def assigned_open_work(*, user: User, limit: int = BOARD_ASSIGNED) -> tuple[list[Task], int]:
    """Assigned open tasks at the user's sites, oldest due first (at most `limit`), and how many there are."""
    qs = scope_tasks(user).filter(assignee__isnull=False, status__in=OPEN_TASK_STATUSES)
    rows = list(qs.select_related("assignee", "enrollment__patient__site").order_by("due_at", "pk")[:limit])
    return rows, qs.count()


def task_assignees(*, user: User, task: Task) -> list[User]:
    """People a task could be given to: active staff the user may refer to, holding the task's role, working at
    the patient's site and currently on the enrollment's care team (so the task reaches their queue)."""
    on_team = CareTeamMember.objects.filter(enrollment_id=task.enrollment_id, period_end__isnull=True).values("user")
    return [
        person
        for person in scope_users(user)
        .filter(sites=task.enrollment.patient.site_id, pk__in=on_team)
        .order_by("username")
        if task.role in (person.roles or [])
    ]


def care_team_candidates(*, user: User, enrollment: Enrollment) -> list[User]:
    """Staff who could join an enrollment's care team: active, at the patient's site, holding a specialist role."""
    return [
        person
        for person in scope_users(user).filter(sites=enrollment.patient.site_id).order_by("username")
        if set(person.roles or []) & SPECIALIST_ROLES
    ]


def care_team_members(*, user: User, enrollment: Enrollment) -> list[CareTeamMember]:
    """The enrollment's care team, current members first (by role), then past memberships."""
    return list(
        scope_care_team(user)
        .filter(enrollment=enrollment)
        .select_related("user")
        .order_by(F("period_end").desc(nulls_first=True), "role", "pk")
    )
