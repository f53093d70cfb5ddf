"""Daylight-saving edges of the recurrence engine (issue 12, section 4), as properties over six zones.

The expected occurrences are computed here from the documented rules (docs/scheduling.md, "Daylight-saving
edges"), not by the engine's own helpers:
- every occurrence is at or after the anchor;
- it is at the intended local wall time, the first instance of a repeated wall time at or after the anchor,
  or, for a wall time the clocks skip, that wall time plus the length of the skip;
- each intended (day, wall time) gives exactly one occurrence: none doubled in the repeated hour, none lost.
"""

from __future__ import annotations

import datetime as dt
import itertools
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pathways.choices import RecurrenceKind, Role
from pathways.domain.recurrence import (
    PatientCalendar,
    RecurrenceSpec,
    first_occurrence,
    occurrence_after,
    occurrences_between,
)
from pathways.models import Schedule, Task
from pathways.services.enrollment import care_team_add
from pathways.services.sweeps import schedules_materialize_due, tasks_escalate_overdue, tasks_remind_due_soon
from tests.factories import PatientFactory
from tests.scheduling.conftest import tasks_of

ZONES = (
    "America/Chicago",
    "America/Phoenix",  # no daylight saving: the control
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # a 30-minute shift
    "Pacific/Chatham",  # UTC+12:45 / +13:45, shifting at 02:45 local
)
OCCURRENCES = 6
PROPERTY_SETTINGS = settings(
    max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@cache
def transitions(zone: str) -> tuple[dt.datetime, ...]:
    """The UTC instants in 2026 at which `zone` changes its offset (to the minute); empty for Phoenix."""
    tz = ZoneInfo(zone)
    found = []
    step = dt.timedelta(minutes=15)
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    while moment.year == 2026:
        if moment.astimezone(tz).utcoffset() != (moment + step).astimezone(tz).utcoffset():
            change = moment + dt.timedelta(minutes=1)
            while change.astimezone(tz).utcoffset() == moment.astimezone(tz).utcoffset():
                change += dt.timedelta(minutes=1)
            found.append(change)
        moment += step
    return tuple(found)


# --- the oracle: the documented rules, written out ------------------------------------------------------


def _instances(local: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
    """Every UTC instant whose wall clock in `tz` reads `local` (naive): none, one, or two (repeated hour)."""
    found = set()
    for fold in (0, 1):
        moment = local.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC)
        if moment.astimezone(tz).replace(tzinfo=None) == local:
            found.add(moment)
    return sorted(found)


def _resolve(local: dt.datetime, tz: ZoneInfo, not_before: dt.datetime) -> dt.datetime:
    """The instant the documented rules give a wall time: the first instance at or after `not_before` (else
    its last), or, when the clocks skip it, the wall time plus the length of the skip."""
    instances = _instances(local, tz)
    if not instances:
        before, after = tz.utcoffset(local - dt.timedelta(hours=6)), tz.utcoffset(local + dt.timedelta(hours=6))
        assert before is not None and after is not None and after > before, local
        # Read on the clocks after the skip: (local + skip) - offset after = local - offset before.
        return (local + (after - before) - after).replace(tzinfo=dt.UTC)
    # Occurrence times are whole seconds; one in the anchor's own second is the anchor (see `expected`).
    floor = not_before.replace(microsecond=0)
    return next((i for i in instances if i >= floor), instances[-1])


def _wall(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _first_due(spec: RecurrenceSpec, anchor: dt.datetime, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """(the first-due instant, the wall time a daily grid keeps) for once/interval/after-completion kinds."""
    anchor_wall = _wall(anchor, tz)
    if spec.first_due_at is None:
        wanted = anchor_wall + dt.timedelta(days=spec.first_due_day)
    else:
        wanted = dt.datetime.combine(anchor_wall.date() + dt.timedelta(days=spec.first_due_day), spec.first_due_at)
    if wanted <= anchor_wall:
        # A first-due time already passed on the clock is the anchor itself.
        return anchor, anchor_wall
    return max(_resolve(wanted, tz, anchor), anchor), wanted


def expected(spec: RecurrenceSpec, anchor: dt.datetime, cal: PatientCalendar, n: int) -> list[dt.datetime]:
    tz = cal.tz
    if spec.kind in (RecurrenceKind.ONCE, RecurrenceKind.AFTER_COMPLETION):
        return [_first_due(spec, anchor, tz)[0]]
    if spec.kind == RecurrenceKind.INTERVAL:
        # The grid runs in whole seconds from the first-due time; its first point in the anchor's second is
        # the anchor itself.
        first, grid_wall = _first_due(spec, anchor, tz)
        if spec.every_hours:
            grid = first.replace(microsecond=0)
            return [max(grid + dt.timedelta(hours=spec.every_hours * k), anchor) for k in range(n)]
        step = dt.timedelta(days=spec.every_days or 1)
        return [max(_resolve(grid_wall.replace(microsecond=0) + step * k, tz, anchor), anchor) for k in range(n)]
    days, at = (
        (cal.dialysis_days, spec.at or cal.session_time)
        if spec.kind == RecurrenceKind.DIALYSIS_DAYS
        else (spec.weekdays, spec.at or dt.time(9, 0))
    )
    anchor_wall = _wall(anchor, tz).replace(microsecond=0)
    start = (
        anchor_wall
        if spec.first_due_day == 0
        else dt.datetime.combine(anchor_wall.date() + dt.timedelta(days=spec.first_due_day), dt.time(0))
    )
    found: list[dt.datetime] = []
    day = start.date()
    while len(found) < n:
        wall = dt.datetime.combine(day, at)
        # On the anchor's own day a wall time counts when the clock has not yet passed it.
        if day.weekday() in days and wall >= start:
            found.append(max(_resolve(wall, tz, anchor), anchor))
        day += dt.timedelta(days=1)
    return found


# --- strategies ------------------------------------------------------------------------------------------

zones = st.sampled_from(ZONES)
wall_minutes = st.integers(min_value=0, max_value=24 * 60 - 1).map(lambda m: dt.time(m // 60, m % 60))


@st.composite
def anchors(draw: st.DrawFn, zone: str) -> dt.datetime:
    """An enrolment instant near a change of offset: on the clock inside the skipped or repeated hour (either
    instance), just around it, or up to three days before it (so that daily rules cross it)."""
    tz = ZoneInfo(zone)
    changes = transitions(zone) or (dt.datetime(2026, 3, 8, 9, 0, tzinfo=dt.UTC),)
    change = draw(st.sampled_from(changes))
    how = draw(st.sampled_from(["wall", "instant", "days-before"]))
    if how == "wall":
        # A wall time within 90 minutes of the change, read as either instance (a skipped one reads as the
        # instant the offset before or after would give it).
        wall = _wall(change, tz) + dt.timedelta(minutes=draw(st.integers(min_value=-90, max_value=90)))
        moment = wall.replace(tzinfo=tz, fold=draw(st.integers(0, 1))).astimezone(dt.UTC)
    elif how == "instant":
        moment = change + dt.timedelta(seconds=draw(st.integers(min_value=-3 * 3600, max_value=3 * 3600)))
    else:
        moment = change - dt.timedelta(minutes=draw(st.integers(min_value=0, max_value=3 * 24 * 60)))
    if draw(st.booleans()):
        moment += dt.timedelta(microseconds=draw(st.integers(min_value=1, max_value=999_999)))
    return moment


@st.composite
def odd_wall_times(draw: st.DrawFn, zone: str) -> dt.time:
    """Wall times inside or beside a skipped or repeated hour of the zone, or any minute of the day."""
    changes = transitions(zone)
    if not changes or draw(st.booleans()):
        return draw(wall_minutes)
    wall = _wall(draw(st.sampled_from(changes)), ZoneInfo(zone))
    return (wall + dt.timedelta(minutes=draw(st.integers(min_value=-75, max_value=75)))).time()


@st.composite
def cases(draw: st.DrawFn) -> tuple[RecurrenceSpec, dt.datetime, PatientCalendar]:
    zone = draw(zones)
    anchor = draw(anchors(zone))
    at = draw(odd_wall_times(zone))
    maybe_at = draw(st.one_of(st.none(), st.just(at)))
    day = draw(st.integers(min_value=0, max_value=2))
    weekdays = tuple(sorted(draw(st.sets(st.integers(0, 6), min_size=1))))
    kind = draw(st.sampled_from(["once", "after_completion", "days", "hours", "weekdays", "dialysis_days"]))
    spec = {
        "once": RecurrenceSpec(kind=RecurrenceKind.ONCE, first_due_day=day, first_due_at=maybe_at),
        "after_completion": RecurrenceSpec(
            kind=RecurrenceKind.AFTER_COMPLETION, first_due_day=day, first_due_at=maybe_at, hours_after_completion=48
        ),
        "days": RecurrenceSpec(
            kind=RecurrenceKind.INTERVAL,
            first_due_day=day,
            first_due_at=maybe_at,
            every_days=draw(st.integers(min_value=1, max_value=3)),
        ),
        "hours": RecurrenceSpec(
            kind=RecurrenceKind.INTERVAL, first_due_day=day, every_hours=draw(st.integers(min_value=1, max_value=25))
        ),
        "weekdays": RecurrenceSpec(kind=RecurrenceKind.WEEKDAYS, first_due_day=day, weekdays=weekdays, at=at),
        "dialysis_days": RecurrenceSpec(kind=RecurrenceKind.DIALYSIS_DAYS, first_due_day=day, at=maybe_at),
    }[kind]
    cal = PatientCalendar(tz=ZoneInfo(zone), dialysis_days=weekdays, session_time=at)
    return spec, anchor, cal


def _chain(spec: RecurrenceSpec, anchor: dt.datetime, cal: PatientCalendar, n: int) -> list[dt.datetime]:
    """The occurrences as the scheduler walks them: the first, then each next one after the last."""
    found: list[dt.datetime] = []
    moment = first_occurrence(spec, anchor=anchor, cal=cal)
    while moment is not None and len(found) < n:
        found.append(moment)
        moment = occurrence_after(spec, anchor=anchor, cal=cal, after=moment, made=len(found))
    return found


# --- the properties --------------------------------------------------------------------------------------

# The example: enrolled at 01:45 CST in Chicago, the second 01:45 of 2026-11-01.
REPEATED_HOUR_ANCHOR = dt.datetime(2026, 11, 1, 7, 45, tzinfo=dt.UTC)
CHICAGO = PatientCalendar(tz=ZoneInfo("America/Chicago"), dialysis_days=(6,), session_time=dt.time(1, 45))


@PROPERTY_SETTINGS
@given(cases())
@example(case=(RecurrenceSpec(kind=RecurrenceKind.ONCE), REPEATED_HOUR_ANCHOR, CHICAGO))
@example(case=(RecurrenceSpec(kind=RecurrenceKind.INTERVAL, every_days=1), REPEATED_HOUR_ANCHOR, CHICAGO))
@example(case=(RecurrenceSpec(kind=RecurrenceKind.INTERVAL, every_hours=8), REPEATED_HOUR_ANCHOR, CHICAGO))
@example(case=(RecurrenceSpec(kind=RecurrenceKind.DIALYSIS_DAYS), REPEATED_HOUR_ANCHOR, CHICAGO))
def test_every_occurrence_is_at_or_after_the_anchor_at_the_documented_wall_time_exactly_once(
    case: tuple[RecurrenceSpec, dt.datetime, PatientCalendar],
) -> None:
    spec, anchor, cal = case
    n = 1 if spec.kind in (RecurrenceKind.ONCE, RecurrenceKind.AFTER_COMPLETION) else OCCURRENCES
    walked = _chain(spec, anchor, cal, n)
    assert all(moment >= anchor for moment in walked), (anchor, walked)
    # Strictly increasing: nothing twice (the repeated hour gives one occurrence, not two).
    assert all(a < b for a, b in itertools.pairwise(walked)), walked
    assert walked == expected(spec, anchor, cal, n), (anchor.isoformat(), [w.isoformat() for w in walked])
    if spec.kind != RecurrenceKind.AFTER_COMPLETION:
        # The preview (occurrences_between) sees the same occurrences as the sweep's walk.
        assert occurrences_between(spec, anchor=anchor, cal=cal, start=anchor, end=walked[-1] + dt.timedelta(0, 1)) == (
            walked
        )


@pytest.mark.parametrize(
    ("zone", "local", "expected_local"),
    [
        # Skipped wall times move forward by the length of the skip.
        ("America/Chicago", "2026-03-08T02:30", "2026-03-08T03:30-05:00"),
        ("Europe/London", "2026-03-29T01:15", "2026-03-29T02:15+01:00"),
        ("Australia/Lord_Howe", "2026-10-04T02:15", "2026-10-04T02:45+11:00"),
        ("Pacific/Chatham", "2026-09-27T03:00", "2026-09-27T04:00+13:45"),
        # Repeated wall times are their first instance.
        ("America/Chicago", "2026-11-01T01:30", "2026-11-01T01:30-05:00"),
        ("America/New_York", "2026-11-01T01:00", "2026-11-01T01:00-04:00"),
        ("Australia/Lord_Howe", "2026-04-05T01:45", "2026-04-05T01:45+11:00"),
        ("Pacific/Chatham", "2026-04-05T02:50", "2026-04-05T02:50+13:45"),
    ],
)
def test_a_weekly_session_in_a_skipped_or_repeated_hour_follows_the_documented_rule(
    zone: str, local: str, expected_local: str
) -> None:
    wall = dt.datetime.fromisoformat(local)
    cal = PatientCalendar(tz=ZoneInfo(zone), dialysis_days=(wall.weekday(),), session_time=wall.time())
    anchor = dt.datetime.combine(wall.date() - dt.timedelta(days=1), dt.time(12, 0), tzinfo=ZoneInfo(zone))
    spec = RecurrenceSpec(kind=RecurrenceKind.DIALYSIS_DAYS)
    assert first_occurrence(spec, anchor=anchor, cal=cal) == dt.datetime.fromisoformat(expected_local)


def test_transitions_found_for_every_zone_but_phoenix() -> None:
    # The strategies lean on these; a zone with no change found would silently test nothing odd.
    assert transitions("America/Phoenix") == ()
    for zone in ZONES:
        if zone != "America/Phoenix":
            assert len(transitions(zone)) == 2, zone


# --- documented windows, at their edges -------------------------------------------------------------------

TICK = dt.timedelta(microseconds=1)


@pytest.fixture
def dressing(enroll, site, coordinator, wound_nurse):
    """The day-0 dressing change of a fresh enrolment with a wound nurse on the care team to remind (the default
    thresholds: due soon 2 h, second level 24 h)."""
    enrollment = enroll(PatientFactory(site=site))
    care_team_add(enrollment_id=enrollment.pk, user=wound_nurse, role=Role.WOUND_NURSING, actor=coordinator)
    return tasks_of(enrollment, "dressing-change")[0]


@pytest.mark.postgres
def test_escalation_starts_once_past_due_and_raises_priority_at_exactly_24_hours_past_due(dressing) -> None:
    due = dressing.due_at
    tasks_escalate_overdue(now=due)  # due now is not yet overdue
    dressing.refresh_from_db()
    assert dressing.escalation_level == 0
    tasks_escalate_overdue(now=due + TICK)
    dressing.refresh_from_db()
    assert dressing.escalation_level == 1
    tasks_escalate_overdue(now=due + dt.timedelta(hours=24) - TICK)
    dressing.refresh_from_db()
    assert dressing.escalation_level == 1
    # "Still open 24 h past due: level 2" (docs/scheduling.md).
    tasks_escalate_overdue(now=due + dt.timedelta(hours=24))
    dressing.refresh_from_db()
    assert dressing.escalation_level == 2


@pytest.mark.postgres
def test_due_soon_reminds_at_exactly_two_hours_before_due_and_not_a_moment_earlier(dressing) -> None:
    assert tasks_remind_due_soon(now=dressing.due_at - dt.timedelta(hours=2) - TICK).notifications == 0
    assert tasks_remind_due_soon(now=dressing.due_at - dt.timedelta(hours=2)).notifications > 0


@pytest.mark.postgres
def test_an_occurrence_exactly_at_the_horizon_is_materialized_and_one_just_beyond_is_not(enroll, site) -> None:
    enrollment = enroll(PatientFactory(site=site))
    schedule = (
        Schedule.objects.filter(enrollment=enrollment, next_due_at__isnull=False).order_by("next_due_at", "pk").first()
    )
    assert schedule is not None
    due = schedule.next_due_at
    # "Occurrences that start within the horizon" (CAREPATH_MATERIALIZE_HORIZON_HOURS, 24).
    schedules_materialize_due(now=due - dt.timedelta(hours=24) - TICK, horizon_hours=24)
    assert not Task.objects.filter(schedule=schedule, available_at=due).exists()
    schedules_materialize_due(now=due - dt.timedelta(hours=24), horizon_hours=24)
    assert Task.objects.filter(schedule=schedule, available_at=due).count() == 1
