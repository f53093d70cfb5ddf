"""occurrence_after restarts its rule near the requested time; it must agree with a full walk from the anchor."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from pathways.choices import RecurrenceKind
from pathways.domain.recurrence import (
    PatientCalendar,
    RecurrenceSpec,
    _iter_from,
    occurrence_after,
    occurrences_between,
)

SPECS = [
    RecurrenceSpec(kind=RecurrenceKind.INTERVAL, every_days=1),
    RecurrenceSpec(kind=RecurrenceKind.INTERVAL, every_days=7, first_due_day=1),
    RecurrenceSpec(kind=RecurrenceKind.INTERVAL, every_days=28, first_due_day=28, first_due_at=dt.time(9, 30)),
    RecurrenceSpec(kind=RecurrenceKind.INTERVAL, every_hours=8),
    RecurrenceSpec(kind=RecurrenceKind.INTERVAL, every_hours=36, first_due_day=2),
    RecurrenceSpec(kind=RecurrenceKind.WEEKDAYS, weekdays=(0, 1, 2, 3, 4), at=dt.time(10, 0), first_due_day=7),
    RecurrenceSpec(kind=RecurrenceKind.WEEKDAYS, weekdays=(6,), at=dt.time(2, 30)),  # inside the DST gap once a year
    RecurrenceSpec(kind=RecurrenceKind.DIALYSIS_DAYS, first_due_day=1),
    RecurrenceSpec(kind=RecurrenceKind.DIALYSIS_DAYS, until_day=400),
]
CALENDARS = [
    PatientCalendar(tz=ZoneInfo("America/Chicago"), dialysis_days=(0, 2, 4), session_time=dt.time(13, 0)),
    PatientCalendar(tz=ZoneInfo("America/Phoenix"), dialysis_days=(1, 3, 5), session_time=dt.time(6, 30)),
    PatientCalendar(tz=ZoneInfo("Australia/Lord_Howe"), dialysis_days=(0, 3), session_time=dt.time(1, 45)),
]
ANCHOR = dt.datetime(2025, 10, 30, 17, 41, tzinfo=dt.UTC)
# Moments over three years, including the hours around DST changes and on occurrence boundaries.
AFTERS = [ANCHOR + dt.timedelta(hours=h) for h in (0, 1, 5, 71, 300, 2_000, 3_337, 8_760, 12_001, 26_000)]


def _full_walk_after(spec, cal, after):
    return next((o for o in _iter_from(spec, ANCHOR, cal) if o > after), None)


@pytest.mark.parametrize(("spec", "cal"), list(itertools.product(SPECS, CALENDARS)))
def test_the_next_occurrence_equals_the_one_found_by_walking_from_the_anchor(spec, cal) -> None:
    for after in AFTERS:
        expected = _full_walk_after(spec, cal, after)
        assert occurrence_after(spec, anchor=ANCHOR, cal=cal, after=after, made=0) == expected, after
        # Exactly on an occurrence: the next one is strictly later.
        if expected is not None:
            assert occurrence_after(spec, anchor=ANCHOR, cal=cal, after=expected, made=0) == _full_walk_after(
                spec, cal, expected
            )


@pytest.mark.parametrize(("spec", "cal"), list(itertools.product(SPECS, CALENDARS)))
def test_a_window_of_occurrences_equals_the_full_walk(spec, cal) -> None:
    start, end = ANCHOR + dt.timedelta(days=130), ANCHOR + dt.timedelta(days=175)
    expected = [o for o in itertools.takewhile(lambda o: o < end, _iter_from(spec, ANCHOR, cal)) if o >= start]
    assert occurrences_between(spec, anchor=ANCHOR, cal=cal, start=start, end=end) == expected
