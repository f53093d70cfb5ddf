"""Workspace reads: My work, a task as an action sees it, the latest change to a task, notifications, and the
patient page. Every one scopes through pathways.selectors.access and loads what its page shows in a fixed
number of queries (no N+1: the query count does not grow with the rows)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from pathways.choices import OPEN_TASK_STATUSES, DerivedCode, ObservationCode, Prong
from pathways.models import (
    Enrollment,
    EnrollmentEvent,
    Flag,
    MedicationChange,
    Notification,
    Observation,
    Patient,
    Task,
    TaskEvent,
    User,
)
from pathways.selectors.access import (
    scope_enrollments,
    scope_notifications,
    scope_patients,
    scope_tasks,
    scope_tasks_to_claim,
)
from pathways.selectors.kept import kept_count, process_cache, user_key
from pathways.selectors.tasks import task_queue_for_user

# What a task row shows: the task's own columns, the patient's name, MRN and site, the assignee's name.
_TASK_COLUMNS = tuple(f.name for f in Task._meta.concrete_fields)
_ROW_RELATED = (
    "enrollment__patient__mrn",
    "enrollment__patient__given_name",
    "enrollment__patient__family_name",
    "enrollment__patient__site__code",
    "enrollment__patient__site__timezone",
    # task_queue_for_user joins the pinned version for the API's precautions; loading the column keeps the join.
    "enrollment__template__precautions",
    "template__code",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
)

# The patient page's trend charts, in the order shown (measured and derived codes).
CHART_CODES: tuple[str, ...] = (
    ObservationCode.CALCIUM,
    ObservationCode.PHOSPHATE,
    DerivedCode.CORRECTED_CALCIUM,
    DerivedCode.CA_X_P,
    ObservationCode.PTH,
    ObservationCode.ALBUMIN,
    ObservationCode.PAIN_SCORE,
    ObservationCode.BWAT_CUA,
)
# Bounds that keep the patient page one screen and a constant number of rows however long the enrollment.
CLOSED_TASKS_SHOWN = 40
OBSERVATION_WINDOW_DAYS = 120
OBSERVATIONS_PER_CODE = 20
MEDICATION_CHANGES_SHOWN = 20
TIMELINE_EVENTS = 60

DUE_FILTERS = ("today", "week", "overdue")


def _rows(qs: QuerySet[Task]) -> QuerySet[Task]:
    return qs.select_related("enrollment__patient__site", "enrollment__template", "template", "assignee").only(
        *_TASK_COLUMNS, *_ROW_RELATED
    )


def my_work(
    *,
    user: User,
    now: dt.datetime,
    day_start: dt.datetime,
    prong: str = "",
    patient: str = "",
    due: str = "",
) -> QuerySet[Task]:
    """The user's queue (task_queue_for_user: assigned to them, then their roles' pools on their care teams;
    overdue first), filtered by prong, patient (MRN or part of a name) and due window. `day_start`: the start of
    the user's local day (aware); "today" is [day_start, day_start + 1 day), "week" [day_start, day_start +
    7 days), "overdue" due before `now`. Read a page's ids from it, then the rows with `work_rows`: the wide
    row's joins (patient, site, assignee) on top of the scoped query took PostgreSQL longer to plan than to run
    (issue 15)."""
    qs = task_queue_for_user(user=user, now=now)
    if prong:
        qs = qs.filter(prong=prong)
    if patient:
        qs = qs.filter(
            Q(enrollment__patient__mrn__icontains=patient)
            | Q(enrollment__patient__family_name__icontains=patient)
            | Q(enrollment__patient__given_name__icontains=patient)
        )
    if due == "today":
        qs = qs.filter(due_at__gte=day_start, due_at__lt=day_start + dt.timedelta(days=1))
    elif due == "week":
        qs = qs.filter(due_at__gte=day_start, due_at__lt=day_start + dt.timedelta(days=7))
    elif due == "overdue":
        qs = qs.filter(due_at__lt=now)
    return qs


def work_rows(ids: list[int]) -> list[Task]:
    """The tasks `ids` (already scoped, e.g. a page of `my_work`), in that order, with what a row shows: the
    patient and site, the assignee, the pinned version and the template."""
    found = {task.pk: task for task in _rows(Task.objects.filter(pk__in=ids))}
    return [found[pk] for pk in ids if pk in found]


def user_timezone_name(user: User) -> str:
    """The IANA zone of the user's first site (by code), for "due today"; UTC when they have none."""
    name = user.sites.order_by("code").values_list("timezone", flat=True).first()
    return name or "UTC"


def tasks_for_action(*, user: User) -> QuerySet[Task]:
    """The tasks the user may try to act on (scope_tasks_to_claim: their tasks, their pools, and their role's
    tasks on their care teams that a colleague has just taken, so a lost race can be explained rather than
    hidden)."""
    return scope_tasks_to_claim(user)


def task_for_action(*, user: User, task_id: int) -> Task | None:
    """The task an action names, with what a row shows, as far as the user may try to act on it
    (tasks_for_action). None when out of scope."""
    return _rows(tasks_for_action(user=user)).filter(pk=task_id).first()


def task_latest_change(*, task_id: int) -> TaskEvent | None:
    """The newest TaskEvent of a task, with its actor: who changed it last and when."""
    return TaskEvent.objects.filter(task_id=task_id).select_related("actor").order_by("-at", "-pk").first()


def notifications_for(*, user: User) -> QuerySet[Notification]:
    """The user's notifications (scope_notifications), newest first, with the task each is about."""
    return (
        scope_notifications(user)
        .select_related("task__enrollment__patient")
        .only(
            "id",
            "kind",
            "message",
            "created_at",
            "read_at",
            "task__id",
            "task__title",
            "task__enrollment__id",
            "task__enrollment__patient__id",
            "task__enrollment__patient__mrn",
        )
        .order_by("-created_at", "-pk")
    )


_unread_counts = process_cache(2000, "unread counts")


def unread_notification_count(*, user: User) -> int:
    """How many of the user's notifications are unread (one COUNT on the (user, read_at) index, compiled once per
    user row: every page's header shows it)."""
    return kept_count(
        _unread_counts,
        user_key(user),
        lambda _now: scope_notifications(user).filter(read_at__isnull=True),
        now=timezone.now(),
    )


@dataclass
class PatientPage:
    """Everything the patient page shows; every list is bounded (see the constants above)."""

    patient: Patient
    enrollment: Enrollment | None
    # (label, prong code, open tasks, recently closed tasks) for each prong, support last.
    columns: list[tuple[str, str, list[Task], list[Task]]] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    # code -> observations oldest first (at most OBSERVATIONS_PER_CODE, within OBSERVATION_WINDOW_DAYS).
    observations: dict[str, list[Observation]] = field(default_factory=dict)
    medication_changes: list[MedicationChange] = field(default_factory=list)
    # (time, kind, "enrollment" | "task", event): both kinds of event, newest first, at most TIMELINE_EVENTS.
    timeline: list[tuple[dt.datetime, str, str, Any]] = field(default_factory=list)


def patient_page(*, user: User, patient_id: int, now: dt.datetime) -> PatientPage | None:
    """A patient and their live (or latest) enrollment as the user may see it: open tasks by prong and the
    latest closed ones, active flags, recent values of the charted codes, medication changes, and the
    enrollment's and its visible tasks' events. None when the patient is out of the user's scope (a 404)."""
    patient = scope_patients(user).select_related("site").filter(pk=patient_id).first()
    if patient is None:
        return None
    enrollment = (
        scope_enrollments(user)
        .filter(patient_id=patient_id)
        .select_related("template", "coordinator")
        .order_by("-enrolled_at", "-pk")
        .first()
    )
    page = PatientPage(patient=patient, enrollment=enrollment)
    if enrollment is None:
        page.columns = [(prong.label, prong.value, [], []) for prong in Prong]
        return page
    visible = scope_tasks(user, enrollments=[enrollment.pk])
    open_tasks = list(_rows(visible.filter(status__in=OPEN_TASK_STATUSES)).order_by("due_at", "pk"))
    closed = list(
        _rows(visible.exclude(status__in=OPEN_TASK_STATUSES)).order_by("-updated_at", "-pk")[:CLOSED_TASKS_SHOWN]
    )
    by_prong: dict[str, tuple[list[Task], list[Task]]] = {prong.value: ([], []) for prong in Prong}
    for task in open_tasks:  # grouping rows for display
        by_prong.setdefault(task.prong, ([], []))[0].append(task)
    for task in closed:
        by_prong.setdefault(task.prong, ([], []))[1].append(task)
    page.columns = [(Prong(code).label, code, items[0], items[1]) for code, items in by_prong.items()]
    page.flags = list(Flag.objects.filter(enrollment=enrollment, cleared_at__isnull=True).order_by("-raised_at"))
    since = now - dt.timedelta(days=OBSERVATION_WINDOW_DAYS)
    observations: dict[str, list[Observation]] = {code: [] for code in CHART_CODES}
    newest_first = [F("effective_at").desc(), F("pk").desc()]
    for obs in (
        Observation.objects.filter(enrollment=enrollment, code__in=CHART_CODES, effective_at__gte=since)
        .only("id", "code", "value", "unit", "entered_value", "entered_unit", "effective_at")
        .annotate(rank=Window(RowNumber(), partition_by=[F("code")], order_by=newest_first))
        .filter(rank__lte=OBSERVATIONS_PER_CODE)
        .order_by(*newest_first)
    ):
        observations[obs.code].append(obs)
    page.observations = {code: list(reversed(values)) for code, values in observations.items()}
    page.medication_changes = list(
        MedicationChange.objects.filter(enrollment=enrollment).order_by("-effective_at", "-pk")[
            :MEDICATION_CHANGES_SHOWN
        ]
    )
    enrollment_events = list(
        EnrollmentEvent.objects.filter(enrollment=enrollment)
        .select_related("actor")
        .order_by("-at", "-pk")[:TIMELINE_EVENTS]
    )
    task_events = list(
        TaskEvent.objects.filter(task__in=visible)
        .select_related("actor", "task")
        .only(*(f.name for f in TaskEvent._meta.concrete_fields), "actor__username", "task__title")
        .order_by("-at", "-pk")[:TIMELINE_EVENTS]
    )
    timeline: list[tuple[dt.datetime, str, str, Any]] = [(e.at, e.kind, "enrollment", e) for e in enrollment_events] + [
        (e.at, e.kind, "task", e) for e in task_events
    ]
    timeline.sort(key=lambda item: item[0], reverse=True)
    page.timeline = timeline[:TIMELINE_EVENTS]
    return page
