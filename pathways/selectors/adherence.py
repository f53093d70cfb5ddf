"""Adherence metrics, computed in the database (docs/adherence.md has the definitions).

A report is three aggregate statements over the caller's scoped tasks (pathways.selectors.access.scope_tasks),
whatever the number of groups: the counts and the lateness percentiles in one pass over the window's tasks, the
overdue figures from the open tasks only (a partial index), and the first actions from the small FirstAction
table. Nothing loops over tasks in Python; Python only divides counts and interpolates between two values.

Lateness percentiles come from a histogram rather than a sort. Times are counted in whole minutes (rounded up),
so the tasks of a group fall into a few thousand (group, minute) cells; a window function runs a cumulative count
over the cells and picks the cells at the percentile's positions, exactly as PostgreSQL's percentile_cont would
pick rows (linear interpolation between the two nearest). A sort of every completed task (percentile_cont)
cannot run in parallel and took most of a second at a million tasks; the histogram is one more GROUP BY column
in a statement that runs in parallel anyway. The same SQL runs on PostgreSQL and on the embedded SQLite
database. The first-action median is the exception on PostgreSQL (see _first_action): one value per enrollment,
nearly all distinct, which percentile_cont sorts faster than the window functions walk them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    Avg,
    Case,
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
    When,
)
from django.db.models.functions import Ceil, Greatest, NullIf, TruncWeek
from django.utils import timezone

from pathways.choices import OPEN_TASK_STATUSES, TaskStatus
from pathways.errors import InvalidInput
from pathways.models import FirstAction, Task, TaskTemplate, User
from pathways.selectors.access import scope_enrollments, scope_tasks

GROUP_FIELDS: dict[str, str] = {
    "prong": "prong",
    "role": "role",
    "site": "enrollment__patient__site__code",
    "template": "template__code",
    "enrollment": "enrollment_id",
}
# The same groups on pathways.models.FirstAction. It keeps the template's code, "" for ad hoc tasks: read as NULL,
# so that its keys are the task query's keys.
FIRST_ACTION_GROUP_KEYS: dict[str, Any] = {
    **{name: F(path) for name, path in GROUP_FIELDS.items()},
    "template": NullIf("template_code", Value("")),
}
DEFAULT_WINDOW = dt.timedelta(days=30)
MAX_WINDOW = dt.timedelta(days=3 * 366)
STS_TEMPLATE = "sodium-thiosulfate"
# Lab draws the pathway schedules (pathways/content/calciphylaxis.yaml); "rechecks" in the metrics.
LAB_TEMPLATES = ("pre-dialysis-labs", "pth-alp", "aluminium-level", "inr-monitoring")
AD_HOC = "(ad hoc)"  # group label for tasks created without a template
# What the report counts: due_at is never null, so COUNT(due_at) counts rows, and it is the key of the covering
# index pathways_task_report (the id is not in it since 0008; Django allows no filter on COUNT(*)).
ROW = "due_at"
# Percentiles as exact fractions (numerator, denominator): positions are computed in integers, so no float
# rounding can move a percentile to the neighbouring value.
MEDIAN, P90 = (1, 2), (9, 10)

# The columns every adherence row has, in CSV order.
METRIC_FIELDS = [
    "due",
    "completed_on_time",
    "completed_late",
    "not_completed",
    "missed",
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
    "sts_doses_missed",
    "lab_rechecks_due",
    "lab_rechecks_on_time",
    "first_action_enrollments",
    "first_action_hours_median",
]


class EpochSeconds(Func):
    """A duration (difference of two datetimes) as float seconds, on PostgreSQL and SQLite alike."""

    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # date_part gives double precision directly; EXTRACT gives numeric (PostgreSQL 14+), several times slower
        # over a million rows.
        return self.as_sql(compiler, connection, template="date_part('epoch', %(expressions)s)")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django's SQLite backend subtracts datetimes as integer microseconds (django_timestamp_diff).
        return self.as_sql(compiler, connection, template="((%(expressions)s) / 1000000.0)")


def minutes_late(end: Any, start: Any) -> Any:
    """Whole minutes from `start` to `end`, rounded up, and 0 when `end` is not after `start`."""
    return Greatest(Ceil(EpochSeconds(end - start) / Value(60.0)), Value(0.0))


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


def _counts() -> dict[str, Any]:
    """Per (group, lateness minute) cell. On time and late are not counted here: a completed task is on time
    exactly when its lateness is 0 minutes, so they are sums over the cells (see _report_sql)."""
    counted = ~Q(status__in=[TaskStatus.CANCELLED, TaskStatus.ENTERED_IN_ERROR])
    completed = Q(status=TaskStatus.COMPLETED)
    missed = Q(status=TaskStatus.MISSED)
    sts = Q(template_id__in=_template_ids((STS_TEMPLATE,))) & counted
    labs = Q(template_id__in=_template_ids(LAB_TEMPLATES)) & counted
    return {
        "tasks": Count("*"),
        "due": Count(ROW, filter=counted),
        "missed": Count(ROW, filter=missed),
        "cancelled": Count(ROW, filter=Q(status=TaskStatus.CANCELLED)),
        "escalated": Count(ROW, filter=counted & Q(escalation_level__gte=1)),
        "sts_doses_scheduled": Count(ROW, filter=sts),
        "sts_doses_given": Count(ROW, filter=sts & completed),
        "sts_doses_missed": Count(ROW, filter=sts & missed),
        "lab_rechecks_due": Count(ROW, filter=labs),
        "lab_rechecks_on_time": Count(ROW, filter=labs & completed & Q(completed_at__lte=F("due_at"))),
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


def _histogram_sql(
    cells_sql: str,
    *,
    keys: Sequence[str],
    value: str,
    weight: str,
    fractions: dict[str, tuple[int, int]],
    columns: Sequence[str] = (),
) -> str:
    """SQL for one row per `keys` with the `columns` given (aggregates over the cells), `n` (the total weight)
    and, per named fraction, the two values percentile_cont would interpolate between (`<name>_lo`, `<name>_hi`).

    `cells_sql` yields one row per (keys, value) with a `weight` (how many items have that value; cells whose
    value is NULL carry weight 0). Over the items sorted by value, percentile f sits at position f * (n - 1):
    its lower neighbour is the first value whose cumulative weight exceeds floor(f * (n - 1)), its upper
    neighbour the first whose cumulative weight exceeds ceil(f * (n - 1)). _interpolate finishes the job."""
    part = ", ".join(keys)
    picks = []
    for name, (num, den) in fractions.items():
        low = f"((n - 1) * {int(num)}) / {int(den)}"  # integer division: floor, n >= 1 wherever it matters
        high = f"{low} + CASE WHEN (n - 1) * {int(num)} = {low} * {int(den)} THEN 0 ELSE 1 END"  # ceil
        picks.append(f"MIN({value}) FILTER (WHERE upto > {low}) AS {name}_lo")
        picks.append(f"MIN({value}) FILTER (WHERE upto > {high}) AS {name}_hi")
    select = ", ".join([*keys, *columns, "MAX(n) AS n", *picks])
    return (
        f"SELECT {select} FROM (SELECT cells.*,"  # noqa: S608 (fixed identifiers and integers, no user text)
        f" CAST(SUM({weight}) OVER (PARTITION BY {part} ORDER BY {value}) AS BIGINT) AS upto,"
        f" CAST(SUM({weight}) OVER (PARTITION BY {part}) AS BIGINT) AS n"
        f" FROM ({cells_sql}) cells) ranked GROUP BY {part}"
    )


def _interpolate(row: dict[str, Any], name: str, fraction: tuple[int, int], *, scale: float) -> float | None:
    """percentile_cont's linear interpolation between the two values _histogram_sql picked, times `scale`."""
    low, high, n = row.pop(f"{name}_lo"), row.pop(f"{name}_hi"), row.get("n") or 0
    if low is None or high is None or n < 1:
        return None
    num, den = fraction
    weight = ((n - 1) * num % den) / den
    return (float(low) + weight * (float(high) - float(low))) * scale


def _fetch(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _report(qs: QuerySet[Task], keys: list[str]) -> list[dict[str, Any]]:
    """Counts and lateness percentiles per group, in one statement (one pass over the window's tasks)."""
    lateness = Case(When(status=TaskStatus.COMPLETED, then=minutes_late(F("completed_at"), F("due_at"))))
    counts = _counts()
    cells = qs.values(*keys, minutes=lateness).annotate(**counts).order_by()
    cells_sql, params = cells.query.sql_with_params()
    sums = [f"SUM({name}) AS {name}" for name in counts if name != "tasks"]
    sums += [
        "SUM(CASE WHEN minutes = 0 THEN tasks ELSE 0 END) AS completed_on_time",
        "SUM(CASE WHEN minutes > 0 THEN tasks ELSE 0 END) AS completed_late",
    ]
    sql = _histogram_sql(
        cells_sql,
        keys=keys,
        value="minutes",
        weight="CASE WHEN minutes IS NULL THEN 0 ELSE tasks END",
        fractions={"median": MEDIAN, "p90": P90},
        columns=sums,
    )
    rows = _fetch(f"{sql} ORDER BY key", params)
    for row in rows:
        row["lateness_hours_median"] = _interpolate(row, "median", MEDIAN, scale=1 / 60)
        row["lateness_hours_p90"] = _interpolate(row, "p90", P90, scale=1 / 60)
        row.pop("n")
        for name, value in row.items():  # SUM is numeric on PostgreSQL
            if name not in keys and not name.startswith("lateness") and value is not None:
                row[name] = int(value)
    return rows


def _overdue(qs: QuerySet[Task], keys: list[str], as_of: dt.datetime) -> dict[Any, dict[str, Any]]:
    """Open tasks past due, per group: few rows, read through the partial index on open tasks."""
    age = _hours(Value(as_of, output_field=DateTimeField()) - F("due_at"))
    rows = (
        qs.filter(status__in=OPEN_TASK_STATUSES, due_at__lt=as_of)
        .values(*keys)
        .annotate(overdue_open=Count("*"), overdue_age_hours_avg=Avg(age), overdue_age_hours_max=Max(age))
        .order_by()
    )
    out = {}
    for row in rows:
        key = row.pop("key")
        row.pop("patient", None)
        out[key] = row
    return out


def _first_action(user: User, group_by: str, window: Window) -> dict[Any, dict[str, Any]]:
    """Per group: enrollments enrolled in the window with a first action in the group, and the median hours
    from enrolment to that first action (a task of the group started or completed, whichever came first).
    Read from FirstAction (a few rows per enrollment, kept by a database trigger), not from the tasks."""
    per_enrollment = (
        FirstAction.objects.filter(
            enrollment__in=scope_enrollments(user),
            enrollment__enrolled_at__gte=window.start,
            enrollment__enrolled_at__lt=window.end,
        )
        .values("enrollment_id", key=FIRST_ACTION_GROUP_KEYS[group_by])
        .annotate(minutes=minutes_late(Min("at"), Min("enrollment__enrolled_at")))
        .order_by()
    )
    inner_sql, params = per_enrollment.query.sql_with_params()
    if connection.vendor == "postgresql":
        # These delays are nearly all distinct (a histogram would have a cell per enrollment), so here
        # PostgreSQL's own percentile_cont is quicker than the window functions: ~0.2 s against ~0.35 s for
        # 130,000 (enrollment, role) pairs. Tested to give the histogram's answer.
        sql = (
            "SELECT key, COUNT(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) AS median"  # noqa: S608
            f" FROM ({inner_sql}) per_enrollment GROUP BY key"
        )
        rows = _fetch(sql, params)
        medians = {row["key"]: None if row["median"] is None else row["median"] / 60 for row in rows}
    else:
        sql = _histogram_sql(inner_sql, keys=["key"], value="minutes", weight="1", fractions={"median": MEDIAN})
        rows = _fetch(sql, params)
        medians = {row["key"]: _interpolate(row, "median", MEDIAN, scale=1 / 60) for row in rows}
    return {
        row["key"]: {"first_action_enrollments": int(row["n"]), "first_action_hours_median": medians[row["key"]]}
        for row in rows
    }


def adherence_by(*, user: User, group_by: str, window: Window) -> list[dict[str, Any]]:
    """One row per group (prong, role, site, template or enrollment) with every metric of METRIC_FIELDS."""
    if group_by not in GROUP_FIELDS:
        raise InvalidInput("unknown group_by", fields={"group_by": [f"one of {', '.join(GROUP_FIELDS)}"]})
    keys = ["key", "patient"] if group_by == "enrollment" else ["key"]
    qs = _tasks_in_window(user, window).annotate(key=F(GROUP_FIELDS[group_by]))
    if group_by == "enrollment":
        qs = qs.annotate(patient=F("enrollment__patient_id"))
    rows = _report(qs, keys)
    overdue = _overdue(qs, keys, window.as_of)
    first_action = _first_action(user, group_by, window)
    no_overdue = {"overdue_open": 0, "overdue_age_hours_avg": None, "overdue_age_hours_max": None}
    no_first_action = {"first_action_enrollments": 0, "first_action_hours_median": None}
    out = []
    for row in rows:
        key = row.pop("key")
        row.update(overdue.get(key, no_overdue))
        row["not_completed"] = row["due"] - row["completed_on_time"] - row["completed_late"]
        row["on_time_rate"] = round(row["completed_on_time"] / row["due"], 4) if row["due"] else None
        row.update(first_action.get(key, no_first_action))
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
    "missed",
    "cancelled",
    "overdue_open",
    "escalated",
    "sts_doses_scheduled",
    "sts_doses_given",
    "sts_doses_missed",
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
        .annotate(due=Count(ROW, filter=counted), on_time=Count(ROW, filter=on_time))
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
