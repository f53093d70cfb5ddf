"""Adherence metrics, computed in the database (docs/adherence.md has the definitions).

Every number is one aggregate query over the caller's scoped tasks (pathways.selectors.access.scope_tasks):
conditional Count/Avg/Max, and percentiles through a small `Percentile` aggregate that is PostgreSQL's
`percentile_cont ... WITHIN GROUP` there and, on the embedded SQLite database, an aggregate function
registered on the connection (as Django itself does for StdDev/Variance on SQLite). Nothing loops over tasks
in Python; Python only divides two counts for a rate.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DateTimeField,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, TruncWeek
from django.utils import timezone

from pathways.choices import OPEN_TASK_STATUSES, Prong, TaskStatus
from pathways.errors import InvalidInput
from pathways.models import Task, TaskTemplate, User
from pathways.selectors.access import scope_enrollments, scope_tasks

GROUP_FIELDS: dict[str, str] = {
    "prong": "prong",
    "role": "role",
    "site": "enrollment__patient__site__code",
    "template": "template__code",
    "enrollment": "enrollment_id",
}
DEFAULT_WINDOW = dt.timedelta(days=30)
MAX_WINDOW = dt.timedelta(days=3 * 366)
STS_TEMPLATE = "sodium-thiosulfate"
# Lab draws the pathway schedules (pathways/content/calciphylaxis.yaml); "rechecks" in the metrics.
LAB_TEMPLATES = ("pre-dialysis-labs", "pth-alp", "aluminium-level", "inr-monitoring")
AD_HOC = "(ad hoc)"  # group label for tasks created without a template

# The columns every adherence row has, in CSV order.
METRIC_FIELDS = [
    "due",
    "completed_on_time",
    "completed_late",
    "not_completed",
    "on_time_rate",
    "cancelled",
    "overdue_open",
    "overdue_age_hours_avg",
    "overdue_age_hours_max",
    "lateness_hours_median",
    "lateness_hours_p90",
    "escalated",
    "sts_doses_scheduled",
    "sts_doses_given",
    "lab_rechecks_due",
    "lab_rechecks_on_time",
    "first_action_enrollments",
    "first_action_hours_median",
]


class EpochSeconds(Func):
    """A duration (difference of two datetimes) as float seconds, on PostgreSQL and SQLite alike."""

    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django's SQLite backend subtracts datetimes as integer microseconds (django_timestamp_diff).
        return self.as_sql(compiler, connection, template="((%(expressions)s) / 1000000.0)")


class Percentile(Aggregate):
    """Continuous percentile (linear interpolation), PostgreSQL's percentile_cont; SQLite: see module doc."""

    function = "PERCENTILE_CONT"
    name = "Percentile"
    output_field = FloatField()
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("percentile fraction must be within 0..1")
        # A validated float literal, never user text.
        super().__init__(expression, fraction=repr(fraction), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sqlite_register_functions()
        # A copy with another template (Aggregate.as_sql does not accept a template override with a filter).
        clone = self.copy()
        clone.function = SQLITE_PERCENTILE
        clone.template = "%(function)s(%(expressions)s, %(fraction)s)"
        return clone.as_sql(compiler, connection, **extra)


class Percentiles(Aggregate):
    """Several continuous percentiles from ONE sort (PostgreSQL: percentile_cont over an array of fractions),
    where one Percentile per fraction would sort the group once each. PostgreSQL only; see _lateness."""

    function = "PERCENTILE_CONT"
    name = "Percentiles"
    template = "%(function)s(ARRAY[%(fractions)s]::double precision[]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fractions: tuple[float, ...], **extra: Any) -> None:
        values = [float(f) for f in fractions]
        if not values or not all(0.0 <= f <= 1.0 for f in values):
            raise ValueError("percentile fractions must be within 0..1")
        # Validated float literals, never user text.
        super().__init__(
            expression, fractions=", ".join(repr(f) for f in values), output_field=ArrayField(FloatField()), **extra
        )


SQLITE_PERCENTILE = "carepath_percentile_cont"


class _SqlitePercentileCont:
    """percentile_cont as an SQLite aggregate: same interpolation as PostgreSQL."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: Any, fraction: float) -> None:
        if value is not None:
            self.values.append(float(value))
        self.fraction = float(fraction)

    def finalize(self) -> float | None:
        if not self.values:
            return None
        values = sorted(self.values)
        position = self.fraction * (len(values) - 1)
        low, high = math.floor(position), math.ceil(position)
        return values[low] + (values[high] - values[low]) * (position - low)


def sqlite_register_functions() -> None:
    """Register the percentile aggregate on the current SQLite connection (idempotent, microseconds)."""
    if connection.vendor != "sqlite":
        return
    connection.ensure_connection()
    # Re-registering replaces the same function; sqlite3 connections take no custom attributes to remember it.
    connection.connection.create_aggregate(SQLITE_PERCENTILE, 2, _SqlitePercentileCont)


@dataclass(frozen=True)
class Window:
    """Tasks count when their due time falls in [start, end); `as_of` is "now" for overdue figures."""

    start: dt.datetime
    end: dt.datetime
    as_of: dt.datetime


def adherence_window(
    *, start: dt.datetime | None = None, end: dt.datetime | None = None, now: dt.datetime | None = None
) -> Window:
    """The reporting window (default: the 30 days up to now), validated."""
    now = now or timezone.now()
    end = end or now
    start = start or end - DEFAULT_WINDOW
    if start >= end:
        raise InvalidInput("start must be before end", fields={"start": ["must be before end"]})
    if end - start > MAX_WINDOW:
        raise InvalidInput("window too long", fields={"end": [f"at most {MAX_WINDOW.days} days after start"]})
    return Window(start=start, end=end, as_of=now)


def _hours(expression: Any) -> Any:
    return EpochSeconds(expression) / Value(3600.0)


def _template_ids(codes: tuple[str, ...]) -> list[int]:
    # Ids (every pathway version) up front, so the big aggregate needs no join to the template table.
    return list(TaskTemplate.objects.filter(code__in=codes).values_list("pk", flat=True))


def _metrics(as_of: dt.datetime) -> dict[str, Any]:
    counted = ~Q(status__in=[TaskStatus.CANCELLED, TaskStatus.ENTERED_IN_ERROR])
    completed = Q(status=TaskStatus.COMPLETED)
    on_time = completed & Q(completed_at__lte=F("due_at"))
    overdue = Q(status__in=OPEN_TASK_STATUSES, due_at__lt=as_of)
    now_value = Value(as_of, output_field=DateTimeField())
    sts = Q(template_id__in=_template_ids((STS_TEMPLATE,))) & counted
    labs = Q(template_id__in=_template_ids(LAB_TEMPLATES)) & counted
    return {
        "due": Count("pk", filter=counted),
        "completed_on_time": Count("pk", filter=on_time),
        "completed_late": Count("pk", filter=completed & Q(completed_at__gt=F("due_at"))),
        "cancelled": Count("pk", filter=Q(status=TaskStatus.CANCELLED)),
        "overdue_open": Count("pk", filter=overdue),
        "overdue_age_hours_avg": Avg(_hours(now_value - F("due_at")), filter=overdue),
        "overdue_age_hours_max": Max(_hours(now_value - F("due_at")), filter=overdue),
        "escalated": Count("pk", filter=counted & Q(escalation_level__gte=1)),
        "sts_doses_scheduled": Count("pk", filter=sts),
        "sts_doses_given": Count("pk", filter=sts & completed),
        "lab_rechecks_due": Count("pk", filter=labs),
        "lab_rechecks_on_time": Count("pk", filter=labs & on_time),
    }


def _tasks_in_window(user: User, window: Window) -> QuerySet[Task]:
    return scope_tasks(user).filter(due_at__gte=window.start, due_at__lt=window.end)


def _label(group_by: str, key: Any) -> Any:
    if group_by == "template" and key is None:
        return AD_HOC
    return key


def _round(name: str, value: Any) -> Any:
    # Hours to two decimals (36 s); rates are rounded to four where they are computed.
    return round(value, 2) if isinstance(value, float) and "hours" in name else value


def _lateness(qs: QuerySet[Task], values: list[str]) -> dict[Any, tuple[float | None, float | None]]:
    """Median and p90 lateness (hours past due, 0 when on time) of the completed tasks, per group.

    A query of its own, over completed tasks only: ordered-set aggregates cannot be partial (parallel)
    aggregates, so keeping them out of the counts query lets PostgreSQL aggregate that one in parallel; and on
    PostgreSQL both percentiles come from ONE sort (percentile_cont over an array of fractions)."""
    lateness = Greatest(_hours(F("completed_at") - F("due_at")), Value(0.0))
    completed = qs.filter(status=TaskStatus.COMPLETED).values(*values)
    if connection.vendor == "postgresql":
        rows = completed.annotate(p=Percentiles(lateness, (0.5, 0.9))).values_list("key", "p")
        return {key: (p[0], p[1]) if p else (None, None) for key, p in rows}
    rows = completed.annotate(m=Percentile(lateness, 0.5), p90=Percentile(lateness, 0.9)).values_list("key", "m", "p90")
    return {key: (m, p90) for key, m, p90 in rows}


def _first_action(user: User, group_by: str, window: Window) -> dict[Any, dict[str, Any]]:
    """Per group: enrollments enrolled in the window with a first action in the group, and the median hours
    from enrolment to that first action (a task of the group started or completed, whichever came first)."""
    field = GROUP_FIELDS[group_by]
    per_enrollment = (
        scope_tasks(user)
        .filter(enrollment__enrolled_at__gte=window.start, enrollment__enrolled_at__lt=window.end)
        .exclude(started_at__isnull=True, completed_at__isnull=True)
        .values("enrollment_id", key=F(field))
        .annotate(delay=_hours(Min(Coalesce("started_at", "completed_at")) - Min("enrollment__enrolled_at")))
    )
    sqlite_register_functions()
    inner_sql, params = per_enrollment.query.sql_with_params()
    if connection.vendor == "postgresql":
        median = "percentile_cont(0.5) WITHIN GROUP (ORDER BY sub.delay)"
    else:
        median = f"{SQLITE_PERCENTILE}(sub.delay, 0.5)"
    # The second level of a two-level aggregate (per enrollment, then per group), still one statement.
    sql = f"SELECT sub.key, COUNT(*), {median} FROM ({inner_sql}) sub GROUP BY sub.key"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: {"first_action_enrollments": n, "first_action_hours_median": m} for key, n, m in cursor.fetchall()}


def adherence_by(*, user: User, group_by: str, window: Window) -> list[dict[str, Any]]:
    """One row per group (prong, role, site, template or enrollment) with every metric of METRIC_FIELDS."""
    if group_by not in GROUP_FIELDS:
        raise InvalidInput("unknown group_by", fields={"group_by": [f"one of {', '.join(GROUP_FIELDS)}"]})
    sqlite_register_functions()
    field = GROUP_FIELDS[group_by]
    values = ["key", "patient"] if group_by == "enrollment" else ["key"]
    qs = _tasks_in_window(user, window).annotate(key=F(field))
    if group_by == "enrollment":
        qs = qs.annotate(patient=F("enrollment__patient_id"))
    rows = list(qs.values(*values).annotate(**_metrics(window.as_of)).order_by("key"))
    lateness = _lateness(qs, values)
    first_action = _first_action(user, group_by, window)
    out = []
    for row in rows:
        key = row.pop("key")
        row["lateness_hours_median"], row["lateness_hours_p90"] = lateness.get(key, (None, None))
        row["not_completed"] = row["due"] - row["completed_on_time"] - row["completed_late"]
        row["on_time_rate"] = round(row["completed_on_time"] / row["due"], 4) if row["due"] else None
        row.update(first_action.get(key, {"first_action_enrollments": 0, "first_action_hours_median": None}))
        entry: dict[str, Any] = {"group": _label(group_by, key)}
        if group_by == "enrollment":
            entry["patient"] = row.pop("patient")
        entry.update({name: _round(name, row[name]) for name in METRIC_FIELDS})
        out.append(entry)
    return out


TOTAL_FIELDS = [
    "due",
    "completed_on_time",
    "completed_late",
    "not_completed",
    "cancelled",
    "overdue_open",
    "escalated",
    "sts_doses_scheduled",
    "sts_doses_given",
    "lab_rechecks_due",
    "lab_rechecks_on_time",
]


def adherence_totals_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers from the grouped rows (the groups partition the tasks, so counts add up exactly; a
    median does not add up, so totals carry none). Sums over a handful of aggregate rows, not over tasks."""
    totals: dict[str, Any] = {name: sum(row[name] for row in rows) for name in TOTAL_FIELDS}
    totals["on_time_rate"] = round(totals["completed_on_time"] / totals["due"], 4) if totals["due"] else None
    ages = [row["overdue_age_hours_max"] for row in rows if row["overdue_age_hours_max"] is not None]
    totals["overdue_age_hours_max"] = max(ages, default=None)
    return totals


def adherence_weekly(*, user: User, window: Window) -> list[dict[str, Any]]:
    """Due and on-time counts per UTC week (by due time), prong and role: one query feeds both trend charts."""
    counted = ~Q(status__in=[TaskStatus.CANCELLED, TaskStatus.ENTERED_IN_ERROR])
    on_time = Q(status=TaskStatus.COMPLETED, completed_at__lte=F("due_at"))
    rows = (
        _tasks_in_window(user, window)
        .annotate(week=TruncWeek("due_at", tzinfo=dt.UTC))
        .values("week", "prong", "role")
        .annotate(due=Count("pk", filter=counted), on_time=Count("pk", filter=on_time))
        .order_by("week", "prong", "role")
    )
    return [{**row, "week": row["week"].date().isoformat()} for row in rows]


def weekly_rates(rows: list[dict[str, Any]], *, by: str) -> list[dict[str, Any]]:
    """adherence_weekly rows summed to one on-time rate per week and prong (or role)."""
    if by not in ("prong", "role"):
        raise InvalidInput("unknown group_by", fields={"group_by": ["one of prong, role"]})
    sums: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        pair = sums.setdefault((row["week"], row[by]), [0, 0])
        pair[0] += row["due"]
        pair[1] += row["on_time"]
    return [
        {
            "week": week,
            "group": group,
            "due": due,
            "completed_on_time": on_time,
            "on_time_rate": round(on_time / due, 4) if due else None,
        }
        for (week, group), (due, on_time) in sorted(sums.items())
    ]


def overdue_tasks(*, user: User, now: dt.datetime | None = None) -> QuerySet[Task]:
    """Open tasks past due, oldest first, with what the overdue list shows (no patient names)."""
    now = now or timezone.now()
    return (
        scope_tasks(user)
        .filter(status__in=OPEN_TASK_STATUSES, due_at__lt=now)
        .select_related("enrollment__patient__site", "assignee", "template")
        .order_by("due_at", "pk")
    )


def patient_board(*, user: User, patient_id: int) -> dict[str, Any] | None:
    """A patient's live (or latest) enrollment with its tasks in the three prongs (plus support), side by side.
    None when the patient is out of the user's scope."""
    enrollment = (
        scope_enrollments(user)
        .filter(patient_id=patient_id)
        .select_related("patient__site", "template")
        .order_by("-enrolled_at", "-pk")
        .first()
    )
    if enrollment is None:
        return None
    tasks = (
        scope_tasks(user).filter(enrollment=enrollment).select_related("assignee", "template").order_by("due_at", "pk")
    )
    columns: dict[str, list[Task]] = {prong.value: [] for prong in Prong}
    for task in tasks:  # grouping rows for display, not computing a metric
        columns.setdefault(task.prong, []).append(task)
    return {"enrollment": enrollment, "columns": [(Prong(p).label, p, items) for p, items in columns.items()]}
