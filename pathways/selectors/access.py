"""The one place that decides what a user may see and do.

Every list, detail, action, export and report scopes through these functions, so they cannot disagree.
Out-of-scope objects are simply absent from the querysets: callers answer 404, never 403, for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value

from pathways.choices import OPEN_TASK_STATUSES, SPECIALIST_ROLES, Role
from pathways.models import (
    ApiToken,
    AuditEvent,
    AuditEventSite,
    CareTeamMember,
    Enrollment,
    Notification,
    PathwayTemplate,
    Patient,
    Site,
    Task,
    User,
    WoundPhoto,
)

# Actions on a task, grouped by who may take them.
WORK_ACTIONS = frozenset({"accept", "start", "complete", "hold", "resume", "fail", "unclaim"})
MANAGE_ACTIONS = frozenset({"assign", "cancel", "hold", "resume", "entered-in-error"})


def is_admin(user: User) -> bool:
    return bool(user.is_superuser or Role.ADMIN in (user.roles or []))


def is_coordinator(user: User) -> bool:
    return Role.COORDINATOR in (user.roles or [])


def is_auditor(user: User) -> bool:
    return Role.AUDITOR in (user.roles or [])


def specialist_roles(user: User) -> list[str]:
    return [r for r in (user.roles or []) if r in SPECIALIST_ROLES]


def is_read_only(user: User) -> bool:
    """Neither admin, coordinator nor specialist (an auditor, or staff with no role): may change no task."""
    return not (is_admin(user) or is_coordinator(user) or specialist_roles(user))


def _site_ids(user: User) -> QuerySet[Site]:
    return user.sites.all()


def scope_sites(user: User) -> QuerySet[Site]:
    if is_admin(user):
        return Site.objects.all()
    return Site.objects.filter(pk__in=_site_ids(user).values("pk"))


def _current_membership(user: User, enrollment_ref: str = "pk", role_ref: str | None = None) -> Exists:
    filters = Q(enrollment=OuterRef(enrollment_ref), user=user, period_end__isnull=True)
    if role_ref:
        filters &= Q(role=OuterRef(role_ref))
    return Exists(CareTeamMember.objects.filter(filters))


def scope_enrollments(user: User) -> QuerySet[Enrollment]:
    qs = Enrollment.objects.all()
    if is_admin(user):
        return qs
    qs = qs.filter(patient__site__in=_site_ids(user))
    if is_coordinator(user) or is_auditor(user):
        return qs
    return qs.filter(_current_membership(user))


def scope_patients(user: User) -> QuerySet[Patient]:
    qs = Patient.objects.all()
    if is_admin(user):
        return qs
    qs = qs.filter(site__in=_site_ids(user))
    if is_coordinator(user) or is_auditor(user):
        return qs
    # Specialists see the patients whose care team they are on (the summary their tasks need).
    member_of = CareTeamMember.objects.filter(user=user, period_end__isnull=True).values("enrollment__patient_id")
    return qs.filter(pk__in=member_of)


def _live_membership_in_role(user: User) -> Exists:
    """A live care-team membership of `user` in the outer task's role on its enrollment, at one of the user's
    sites."""
    return Exists(
        CareTeamMember.objects.filter(
            enrollment=OuterRef("enrollment"),
            role=OuterRef("role"),
            user=user,
            period_end__isnull=True,
            enrollment__patient__site__in=_site_ids(user),
        )
    )


def _own_tasks(user: User, tasks: QuerySet[Task]) -> QuerySet[Task]:
    """`tasks` assigned to `user` on a care team they are on (a live membership), at one of their sites: a
    specialist's own work. The site check on the task's side: inside the membership it makes PostgreSQL expect a
    handful of memberships and read every task of them, rather than the user's own tasks through the assignee
    index."""
    return tasks.filter(
        Exists(CareTeamMember.objects.filter(enrollment=OuterRef("enrollment"), user=user, period_end__isnull=True)),
        assignee=user,
        enrollment__patient__site__in=_site_ids(user),
    )


def _care_team_task_ids(
    user: User, *, open_only: bool, pool_any_assignee: bool = False, enrollments: Any = None, own: bool = False
) -> QuerySet[Task, Any]:
    """Ids of the tasks a specialist reaches through their live care-team memberships: the tasks assigned to
    them on a care team they are on, plus the tasks of a role they hold there that are in its pool (or, with
    `pool_any_assignee`, whoever holds them).

    Two branches joined by UNION ALL rather than one `mine OR pool` condition: PostgreSQL cannot drive an OR of
    two EXISTS from the user's memberships, so the OR form read every open pool task of the whole network and
    discarded those of other teams (issue 15). Each branch starts from the user's own rows: the memberships
    through the pool indexes (enrollment, role), the assigned tasks through the assignee indexes. A lookup by
    id (`.filter(pk=…)`) is pushed into both branches, so a detail or action still reads one row; so is
    `enrollments` (ids, or a queryset of ids), so one patient's tasks read that patient's rows only.
    PostgreSQL runs the UNION once per candidate row of the outer query, which is cheap only when each run is
    narrow: one patient's page read the user's whole history eleven times before (187 ms at 1M tasks).
    `own`: the assigned branch alone (the user's own tasks: the pool branch holds only unassigned ones)."""
    tasks = Task.objects.order_by()  # no ORDER BY inside the UNION
    if open_only:
        tasks = tasks.filter(status__in=OPEN_TASK_STATUSES)
    if enrollments is not None:
        tasks = tasks.filter(enrollment_id__in=enrollments)
    pool = tasks.filter(_live_membership_in_role(user))
    if not pool_any_assignee:
        pool = pool.filter(assignee__isnull=True)
    mine = _own_tasks(user, tasks)
    if own:
        return mine.values("pk")
    return pool.values("pk").union(mine.values("pk"), all=True)


def scope_tasks(user: User, *, open_only: bool = False, enrollments: Any = None, own: bool = False) -> QuerySet[Task]:
    """The tasks a user may see: admins all; coordinators and auditors their sites'; specialists, on the care
    teams they are on (live memberships at their sites), the tasks assigned to them and the pools of the roles
    they hold there. `open_only`: only open tasks (requested, accepted, in progress, on hold), which lets the
    specialists' branches use the open-task partial indexes. `enrollments` (ids, or a queryset of ids): only
    their tasks, narrowed inside the specialists' branches too (a patient's page, a list for one patient).
    `own`: only those of them assigned to the user (`assignee=me`); a specialist's pools are then not read."""
    qs = Task.objects.all()
    if open_only:
        qs = qs.filter(status__in=OPEN_TASK_STATUSES)
    if enrollments is not None:
        qs = qs.filter(enrollment_id__in=enrollments)
    if own:
        qs = qs.filter(assignee=user)
    if is_admin(user):
        return qs
    if is_coordinator(user) or is_auditor(user):
        return qs.filter(enrollment__patient__site__in=_site_ids(user))
    return qs.filter(pk__in=_care_team_task_ids(user, open_only=open_only, enrollments=enrollments, own=own))


def scope_tasks_is_own_work(user: User) -> bool:
    """Whether scope_tasks(user) is bounded by the user's own care teams (a specialist's), rather than by
    their sites (coordinators, auditors) or the network (admins): what a list may cost to total in one
    statement (pathways.api.pagination)."""
    return not (is_admin(user) or is_coordinator(user) or is_auditor(user))


def scope_task_queue(user: User) -> QuerySet[Task]:
    """The user's open work ("my queue"), within scope_tasks: the open tasks assigned to them, plus the open
    pools of the roles they hold on their live care teams. For a specialist that is exactly their open
    scope_tasks. Coordinators, auditors and admins see more than they work: theirs is the same two kinds within
    their scope (their sites; admins everywhere), again starting from their own rows (the assignee index, their
    memberships), never from their sites' whole open work."""
    if scope_tasks_is_own_work(user):
        return scope_tasks(user, open_only=True)
    tasks = Task.objects.order_by().filter(status__in=OPEN_TASK_STATUSES)
    membership = CareTeamMember.objects.filter(
        enrollment=OuterRef("enrollment"), user=user, period_end__isnull=True, role=OuterRef("role")
    )
    mine = tasks.filter(assignee=user)
    if not is_admin(user):
        membership = membership.filter(enrollment__patient__site__in=_site_ids(user))
        mine = mine.filter(enrollment__patient__site__in=_site_ids(user))
    pool = tasks.filter(Exists(membership), assignee__isnull=True)
    return Task.objects.filter(pk__in=pool.values("pk").union(mine.values("pk"), all=True))


def scope_tasks_to_claim(user: User) -> QuerySet[Task]:
    """Tasks a user may try to claim: those in scope_tasks, plus their role's tasks on their care teams that a
    colleague has just taken, so that losing a claim race is a 409 ("already assigned"), not a 404."""
    if not scope_tasks_is_own_work(user):
        return scope_tasks(user)
    return Task.objects.filter(pk__in=_care_team_task_ids(user, open_only=False, pool_any_assignee=True))


def scope_care_team(user: User) -> QuerySet[CareTeamMember]:
    """Care-team memberships (current and past) of the enrollments the user may see."""
    return CareTeamMember.objects.filter(enrollment__in=scope_enrollments(user))


def scope_users(user: User) -> QuerySet[User]:
    """Staff the user may refer to (assignees, care-team members): active users sharing one of their sites."""
    qs = User.objects.filter(is_active=True)
    if is_admin(user):
        return qs
    return qs.filter(sites__in=_site_ids(user)).distinct()


def scope_notifications(user: User) -> QuerySet[Notification]:
    """A user's own notifications, and only about tasks at their sites (a site removed is a site forgotten)."""
    qs = Notification.objects.filter(user=user)
    if is_admin(user):
        return qs
    return qs.filter(task__enrollment__patient__site__in=_site_ids(user))


def scope_pathway_templates(user: User) -> QuerySet[PathwayTemplate]:
    # Pathway content holds no patient data: every member of staff may read every version.
    return PathwayTemplate.objects.all()


def scope_wound_photos(user: User) -> QuerySet[WoundPhoto]:
    """Wound photographs the user may see (metadata, thumbnail and full image alike): those of the enrollments
    they may see (their sites; for specialists, their care teams). Soft-deleted photos are never served."""
    return WoundPhoto.objects.filter(enrollment__in=scope_enrollments(user), deleted_at__isnull=True)


def can_photograph_task(user: User | None, task: Task) -> bool:
    """Attach photographs to an assessment task: whoever may complete it, that is an admin or the system, the
    assignee on the care team, or a member of the care team holding the task's role (who could claim it).
    Assumes the task is in scope; the task's status is the caller's check."""
    if user is None or is_admin(user):
        return True
    if is_auditor(user) and not specialist_roles(user):
        return False
    if not user.sites.filter(pk=task.enrollment.patient.site_id).exists():
        return False
    team_roles = set(
        CareTeamMember.objects.filter(enrollment_id=task.enrollment_id, user=user, period_end__isnull=True).values_list(
            "role", flat=True
        )
    )
    return bool(team_roles) and (task.assignee_id == user.pk or task.role in team_roles)


def can_register_patient(user: User | None, site: Site) -> bool:
    """Register a patient at `site`: coordinators at that site, admins, the system."""
    if user is None or is_admin(user):
        return True
    return is_coordinator(user) and user.sites.filter(pk=site.pk).exists()


@dataclass(frozen=True)
class _Actor:
    """What _may_act asks of the user, read once (a page asks it for every task and action)."""

    pk: int
    reads_only: bool  # an auditor with no working role
    coordinator: bool

    @classmethod
    def of(cls, user: User) -> _Actor:
        return cls(
            pk=user.pk,
            reads_only=is_auditor(user) and not (is_coordinator(user) or specialist_roles(user)),
            coordinator=is_coordinator(user),
        )


def _may_act(actor: _Actor, task: Task, action: str, *, in_site: bool, team_roles: set[str] | None) -> bool:
    """The one rule behind can_act_on_task and task_actions_allowed, given the facts they look up.
    `team_roles`: the roles the user currently holds on the task's care team (None or empty: not on it)."""
    if actor.reads_only or not in_site:
        return False
    if actor.coordinator and action in MANAGE_ACTIONS:
        return True
    if action == "claim":
        return task.assignee_id is None and task.role in (team_roles or set())
    if action in WORK_ACTIONS:
        return task.assignee_id == actor.pk and bool(team_roles)
    return False


def can_act_on_task(user: User | None, task: Task, action: str) -> bool:
    """May `user` take `action` on `task`? None means the system (scheduler, rules). Assumes the task is in scope."""
    if user is None or is_admin(user):
        return True
    if is_auditor(user) and not (is_coordinator(user) or specialist_roles(user)):
        return False
    # One statement: a marker row if the user works at the task's site, and the roles they hold on its team.
    at_site = (
        User.sites.through.objects.filter(user_id=user.pk, site_id=task.enrollment.patient.site_id)
        .annotate(found=Value(_AT_SITE, output_field=CharField()))
        .values_list("found", flat=True)  # type: ignore[misc]  # the annotation above (django-stubs)
    )
    team = CareTeamMember.objects.filter(enrollment_id=task.enrollment_id, user=user, period_end__isnull=True)
    # order_by(): no ORDER BY inside the UNION's parts (SQLite refuses one; the model orders memberships).
    found = set(at_site.order_by().union(team.order_by().values_list("role", flat=True), all=True))
    if _AT_SITE not in found:
        return False
    return _may_act(_Actor.of(user), task, action, in_site=True, team_roles=found - {_AT_SITE})


_AT_SITE = "@site"  # not a role name (roles are lower-case words)


def task_actions_allowed(user: User, tasks: Iterable[Task], actions: Iterable[str]) -> dict[int, frozenset[str]]:
    """For each task (by id), which of `actions` the user may take: can_act_on_task's answer for a whole page
    in one statement (the user's sites and their current roles on the page's care teams). Each task needs
    `enrollment.patient` loaded, or `enrollment__patient__site_id` reachable without a query (select_related)."""
    tasks = list(tasks)
    actions = tuple(actions)
    if is_admin(user):
        return {t.pk: frozenset(actions) for t in tasks}
    actor = _Actor.of(user)
    if actor.reads_only:
        return {t.pk: frozenset() for t in tasks}
    # (site id, "@site") for each of the user's sites, then (enrollment id, role) for each live membership.
    at_sites = (
        User.sites.through.objects.filter(user_id=user.pk)
        .annotate(found=Value(_AT_SITE, output_field=CharField()))
        .values_list("site_id", "found")  # type: ignore[misc]  # the annotation above (django-stubs)
    )
    team = CareTeamMember.objects.filter(
        enrollment_id__in={t.enrollment_id for t in tasks}, user=user, period_end__isnull=True
    ).values_list("enrollment_id", "role")
    site_ids: set[int] = set()
    roles: dict[int, set[str]] = {}
    for key, value in at_sites.order_by().union(team.order_by(), all=True):
        if value == _AT_SITE:
            site_ids.add(key)
        else:
            roles.setdefault(key, set()).add(value)
    return {
        t.pk: frozenset(
            a
            for a in actions
            if _may_act(
                actor, t, a, in_site=t.enrollment.patient.site_id in site_ids, team_roles=roles.get(t.enrollment_id)
            )
        )
        for t in tasks
    }


def can_manage_enrollment(user: User | None, enrollment: Enrollment) -> bool:
    """Enrol, hold, resume, complete, revoke and build care teams: coordinators at the site, admins, the system."""
    if user is None or is_admin(user):
        return True
    return is_coordinator(user) and user.sites.filter(pk=enrollment.patient.site_id).exists()


def can_enroll_patient(user: User | None, patient: Patient) -> bool:
    if user is None or is_admin(user):
        return True
    return is_coordinator(user) and user.sites.filter(pk=patient.site_id).exists()


def can_migrate_enrollments(user: User) -> bool:
    """Compare pathway versions and move enrollments to another version: coordinators (their sites' enrollments,
    through scope_enrollments and can_manage_enrollment) and admins."""
    return is_admin(user) or is_coordinator(user)


def can_view_reports(user: User) -> bool:
    """Adherence reports and the dashboard's overview and overdue list: coordinators, auditors, admins
    (each over their own scope_tasks)."""
    return is_admin(user) or is_coordinator(user) or is_auditor(user)


def can_view_audit_log(user: User) -> bool:
    """The audit log (who did what, when): auditors and admins."""
    return is_admin(user) or is_auditor(user)


def scope_audit_events(user: User) -> QuerySet[AuditEvent]:
    """Audit events an auditor may read: those that concern one of their sites (AuditEventSite, recorded with
    each event: the patient's site, the sites of the patients a search matched, else the sites searched or the
    actor's), plus anonymous events that concern no site (unauthenticated requests, failed logins for unknown
    usernames). Admins: all. Others: none."""
    qs = AuditEvent.objects.all()
    if is_admin(user):
        return qs
    if not is_auditor(user):
        return qs.none()
    mine = AuditEventSite.objects.filter(event=OuterRef("pk"), site__in=_site_ids(user))
    anywhere = AuditEventSite.objects.filter(event=OuterRef("pk"))
    return qs.filter(Exists(mine) | (~Exists(anywhere) & Q(actor__isnull=True, patient__isnull=True)))


def scope_api_tokens(user: User) -> QuerySet[ApiToken]:
    """API tokens the user may list and manage: every one for an admin, none for anyone else (issue 18)."""
    if is_admin(user):
        return ApiToken.objects.select_related("user").all()
    return ApiToken.objects.none()


def scope_service_accounts(user: User) -> QuerySet[User]:
    """Service accounts (non-person users) the user may list: every one for an admin, none for anyone else."""
    if is_admin(user):
        return User.objects.filter(service_account__isnull=False).prefetch_related("sites")
    return User.objects.none()


def can_manage_api_tokens(user: User) -> bool:
    """Service accounts and API tokens are an admin's to create, rotate and revoke."""
    return is_admin(user)
