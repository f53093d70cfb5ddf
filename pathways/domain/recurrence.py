"""Recurrence engine: when do a schedule's occurrences fall? Pure functions over dateutil.rrule.

Calendar rules (days, weekdays, dialysis days, "at 09:00") are evaluated in the site's local wall-clock
time and converted to UTC one occurrence at a time, so that a 13:00 Monday session stays 13:00 local across
daylight-saving changes. Interval rules in hours are absolute (every 8 h is 8 real hours).

Wall times that daylight saving makes odd (docs/scheduling.md, "Daylight-saving edges"):
- a wall time that happens twice (the repeated hour when clocks go back) is the first of the two, unless that
  one is before the anchor, in which case it is the second; it is never both;
- a wall time that does not happen (the skipped hour when clocks go forward) moves forward by the length of
  the skip (02:30 in Chicago is 03:30 CDT; 02:15 at Lord Howe, whose clocks skip 30 minutes, is 02:45);
- no occurrence is ever before its anchor: a first-due time at or before the anchor is the anchor itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateutil import rrule

from pathways.choices import RecurrenceKind

if TYPE_CHECKING:
    from pathways.models import Patient, TaskTemplate

DEFAULT_SESSION_TIME = dt.time(7, 0)
DEFAULT_WEEKDAY_TIME = dt.time(9, 0)  # a weekday rule without `at`
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKDAY_CODES = {code: n for n, code in enumerate(("MO", "TU", "WE", "TH", "FR", "SA", "SU"))}


@dataclass(frozen=True)
class RecurrenceSpec:
    """A task template's timing rules, parsed from its first_due/recurrence fields."""

    kind: str
    first_due_day: int = 0
    first_due_at: dt.time | None = None
    every_hours: int | None = None
    every_days: int | None = None
    weekdays: tuple[int, ...] = ()
    at: dt.time | None = None
    hours_after_completion: int | None = None
    count: int | None = None
    until_day: int | None = None

    @classmethod
    def from_fields(cls, *, kind: str, first_due: dict, recurrence: dict) -> RecurrenceSpec:
        return cls(
            kind=kind,
            first_due_day=int(first_due.get("day", 0)),
            first_due_at=parse_hhmm(first_due["at"]) if first_due.get("at") else None,
            every_hours=recurrence.get("every_hours"),
            every_days=recurrence.get("every_days"),
            weekdays=tuple(recurrence.get("weekdays", ())),
            at=parse_hhmm(recurrence["at"]) if recurrence.get("at") else None,
            hours_after_completion=recurrence.get("hours"),
            count=recurrence.get("count"),
            until_day=recurrence.get("until_day"),
        )

    @classmethod
    def for_template(cls, template: TaskTemplate) -> RecurrenceSpec:
        """The spec of a stored TaskTemplate (its recurrence_kind, first_due and recurrence fields)."""
        return cls.from_fields(
            kind=template.recurrence_kind, first_due=template.first_due, recurrence=template.recurrence
        )

    @property
    def is_scheduled(self) -> bool:
        return self.kind != RecurrenceKind.ON_TRIGGER

    @property
    def is_recurring(self) -> bool:
        return self.kind not in (RecurrenceKind.ONCE, RecurrenceKind.ON_TRIGGER)

    def describe(self) -> str:
        """The timing in words, as a coordinator reads it: "every 7 days", "every 8 h", "Mon, Wed, Fri at
        09:00", "on the patient's dialysis days at the session time", "48 h after each completion", "once, on
        day 14 at 09:00", with the bounds ("10 times", "until day 90") when there are any."""
        at = self.at.strftime("%H:%M") if self.at else None
        if self.kind == RecurrenceKind.ONCE:
            when = (
                "at enrolment" if self.first_due_day == 0 and not self.first_due_at else f"on day {self.first_due_day}"
            )
            text = "once, " + when + (f" at {self.first_due_at.strftime('%H:%M')}" if self.first_due_at else "")
        elif self.kind == RecurrenceKind.INTERVAL:
            text = f"every {self.every_hours} h" if self.every_hours else f"every {self.every_days} days"
            if self.every_days == 1:
                text = "every day"
            if at and self.every_days:
                text += f" at {at}"
        elif self.kind == RecurrenceKind.WEEKDAYS:
            numbers = sorted(_WEEKDAY_CODES.get(str(d), d) if isinstance(d, str) else d for d in self.weekdays)
            days = ", ".join(WEEKDAY_NAMES[int(d)] for d in numbers)
            text = f"{days} at {at or DEFAULT_WEEKDAY_TIME.strftime('%H:%M')}"
        elif self.kind == RecurrenceKind.DIALYSIS_DAYS:
            text = "on the patient's dialysis days at the session time"
        elif self.kind == RecurrenceKind.AFTER_COMPLETION:
            text = f"{self.hours_after_completion} h after each completion"
        else:
            return "only when a rule fires"
        bounds = [f"{self.count} times" if self.count else "", f"until day {self.until_day}" if self.until_day else ""]
        return ", ".join([text, *[b for b in bounds if b]])


@dataclass(frozen=True)
class PatientCalendar:
    """Where and when a patient's local-time rules are evaluated."""

    tz: ZoneInfo
    dialysis_days: tuple[int, ...] = ()
    session_time: dt.time = DEFAULT_SESSION_TIME

    @classmethod
    def for_patient(cls, patient: Patient) -> PatientCalendar:
        """The calendar of a stored Patient: its site's timezone, dialysis days and session time."""
        return cls(
            tz=patient.site.tzinfo,
            dialysis_days=tuple(patient.dialysis_days or ()),
            session_time=patient.dialysis_session_time or DEFAULT_SESSION_TIME,
        )


def parse_hhmm(value: str) -> dt.time:
    """Parse 'HH:MM' (24-hour); raises ValueError with the offending value."""
    try:
        hour, minute = value.split(":")
        return dt.time(int(hour), int(minute))
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"expected a time as HH:MM, got {value!r}") from exc


def _to_local_naive(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _to_utc(local_naive: dt.datetime, tz: ZoneInfo, *, not_before: dt.datetime | None = None) -> dt.datetime:
    """The UTC instant of a local wall time (naive, its fold ignored), by the rules in the module docstring.

    A repeated wall time is its first instance unless that is before `not_before`; then its second.
    A skipped wall time: zoneinfo reads it with the offset in force before the skip (fold=0), which is the
    instant the skip's length later on the clock.
    """
    first = local_naive.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    # Whole seconds: rrule drops microseconds, and a wall time in the anchor's second is the anchor's.
    if not_before is None or first >= not_before.replace(microsecond=0):
        return first
    # Only a repeated wall time has a second instance (fold=1 differs from fold=0 there, nowhere else).
    second = local_naive.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    return max(first, second)


def _day_start_local(anchor: dt.datetime, cal: PatientCalendar, day: int) -> dt.datetime:
    local_date = _to_local_naive(anchor, cal.tz).date() + dt.timedelta(days=day)
    return dt.datetime.combine(local_date, dt.time(0, 0))


def _first_due_local(spec: RecurrenceSpec, anchor: dt.datetime, cal: PatientCalendar) -> dt.datetime:
    """The first-due wall time (local naive) for once/interval/after-completion kinds, never before the anchor's.

    Convert it with `_first_due_utc` (or `_to_utc(..., not_before=anchor)`): a naive wall time equal to the
    anchor's may name the earlier instance of a repeated hour.
    """
    anchor_local = _to_local_naive(anchor, cal.tz)
    if spec.first_due_at is None:
        candidate = anchor_local + dt.timedelta(days=spec.first_due_day)
    else:
        candidate = dt.datetime.combine(_day_start_local(anchor, cal, spec.first_due_day).date(), spec.first_due_at)
    return max(candidate, anchor_local)


def _first_due_utc(spec: RecurrenceSpec, anchor: dt.datetime, cal: PatientCalendar) -> dt.datetime:
    """The first-due instant (aware UTC) for once/interval/after-completion kinds: at or after the anchor."""
    return _to_utc(_first_due_local(spec, anchor, cal), cal.tz, not_before=anchor)


def _until_local(spec: RecurrenceSpec, anchor: dt.datetime, cal: PatientCalendar) -> dt.datetime | None:
    if spec.until_day is None:
        return None
    return _day_start_local(anchor, cal, spec.until_day + 1) - dt.timedelta(microseconds=1)


def _weekly_days_and_time(spec: RecurrenceSpec, cal: PatientCalendar) -> tuple[tuple[int, ...], dt.time]:
    if spec.kind == RecurrenceKind.DIALYSIS_DAYS:
        return cal.dialysis_days, spec.at or cal.session_time
    return spec.weekdays, spec.at or DEFAULT_WEEKDAY_TIME


def _rule(
    spec: RecurrenceSpec, anchor: dt.datetime, cal: PatientCalendar, near: dt.datetime | None = None
) -> tuple[rrule.rrule, bool] | None:
    """An rrule over local naive times (or UTC naive for hourly intervals), and whether it is in UTC.

    With `near`, the rule starts close to (at or before) that moment on the same occurrence grid, so that
    finding the next occurrence of a years-old schedule does not walk through every earlier one.
    """
    until = _until_local(spec, anchor, cal)
    if spec.kind == RecurrenceKind.INTERVAL:
        start = _first_due_local(spec, anchor, cal)
        if spec.every_hours:
            start_utc = _first_due_utc(spec, anchor, cal).replace(tzinfo=None)
            until_utc = _to_utc(until, cal.tz).replace(tzinfo=None) if until else None
            step = dt.timedelta(hours=spec.every_hours)
            if near is not None:
                skipped = int((near.astimezone(dt.UTC).replace(tzinfo=None) - start_utc) / step) - 1
                start_utc += step * max(skipped, 0)
            return rrule.rrule(rrule.HOURLY, interval=spec.every_hours, dtstart=start_utc, until=until_utc), True
        every = spec.every_days or 1
        if near is not None:
            # Whole local days keep the wall-clock time across DST, exactly as DAILY;interval=N does.
            skipped = ((_to_local_naive(near, cal.tz).date() - start.date()).days // every) - 1
            start += dt.timedelta(days=every * max(skipped, 0))
        return rrule.rrule(rrule.DAILY, interval=every, dtstart=start, until=until), False
    if spec.kind in (RecurrenceKind.WEEKDAYS, RecurrenceKind.DIALYSIS_DAYS):
        days, at = _weekly_days_and_time(spec, cal)
        if not days:
            return None
        start = (
            _to_local_naive(anchor, cal.tz)
            if spec.first_due_day == 0
            else _day_start_local(anchor, cal, spec.first_due_day)
        )
        if near is not None:
            # Weekly rules without an interval select by weekday and time only: any later start of day keeps the grid.
            near_day = dt.datetime.combine(_to_local_naive(near, cal.tz).date() - dt.timedelta(days=1), dt.time(0))
            start = max(start, near_day)
        rule = rrule.rrule(
            rrule.WEEKLY,
            byweekday=sorted(days),
            byhour=at.hour,
            byminute=at.minute,
            bysecond=0,
            dtstart=start.replace(microsecond=0),
            until=until,
        )
        return rule, False
    return None


def _iter_from(
    spec: RecurrenceSpec, anchor: dt.datetime, cal: PatientCalendar, near: dt.datetime | None = None
) -> Iterator[dt.datetime]:
    """Occurrences (aware UTC) from the anchor on (or from shortly before `near`), ignoring the count bound."""
    if spec.kind in (RecurrenceKind.ONCE, RecurrenceKind.AFTER_COMPLETION):
        first = _first_due_local(spec, anchor, cal)
        until = _until_local(spec, anchor, cal)
        if until is None or first <= until:
            yield _first_due_utc(spec, anchor, cal)
        return
    built = _rule(spec, anchor, cal, near)
    if built is None:
        return
    rule, in_utc = built
    anchor_utc = anchor.astimezone(dt.UTC)
    for occurrence in rule:
        moment = occurrence.replace(tzinfo=dt.UTC) if in_utc else _to_utc(occurrence, cal.tz, not_before=anchor)
        # rrule drops dtstart's microseconds, so an occurrence at the anchor can come out up to a second early.
        yield max(moment, anchor_utc)


def first_occurrence(spec: RecurrenceSpec, *, anchor: dt.datetime, cal: PatientCalendar) -> dt.datetime | None:
    """The first occurrence at or after the anchor (None when the rule yields nothing)."""
    if not spec.is_scheduled:
        return None
    return next(_iter_from(spec, anchor, cal), None)


def occurrence_after(
    spec: RecurrenceSpec, *, anchor: dt.datetime, cal: PatientCalendar, after: dt.datetime, made: int
) -> dt.datetime | None:
    """The next occurrence strictly after `after`, given `made` occurrences so far; None when finished.

    After-completion rules return None: their next time is set when the open occurrence is completed.
    """
    if not spec.is_recurring or spec.kind == RecurrenceKind.AFTER_COMPLETION:
        return None
    if spec.count is not None and made >= spec.count:
        return None
    for occurrence in _iter_from(spec, anchor, cal, near=after):
        if occurrence > after:
            return occurrence
    return None


def next_after_completion(
    spec: RecurrenceSpec, *, anchor: dt.datetime, cal: PatientCalendar, completed_at: dt.datetime, made: int
) -> dt.datetime | None:
    """For after-completion rules: the next occurrence, N hours after this completion (None when bounded out)."""
    if spec.kind != RecurrenceKind.AFTER_COMPLETION or spec.hours_after_completion is None:
        return None
    if spec.count is not None and made >= spec.count:
        return None
    candidate = completed_at + dt.timedelta(hours=spec.hours_after_completion)
    until = _until_local(spec, anchor, cal)
    if until is not None and _to_local_naive(candidate, cal.tz) > until:
        return None
    return candidate


def occurrences_between(
    spec: RecurrenceSpec,
    *,
    anchor: dt.datetime,
    cal: PatientCalendar,
    start: dt.datetime,
    end: dt.datetime,
    made: int = 0,
    limit: int = 10_000,
) -> list[dt.datetime]:
    """Occurrences in [start, end) that the count bound still allows (for previews and skipped counts)."""
    remaining = None if spec.count is None else max(spec.count - made, 0)
    found: list[dt.datetime] = []
    if not spec.is_scheduled or spec.kind == RecurrenceKind.AFTER_COMPLETION:
        return found
    for occurrence in _iter_from(spec, anchor, cal, near=start):
        if occurrence >= end or len(found) >= limit:
            break
        if occurrence >= start:
            if remaining is not None and len(found) >= remaining:
                break
            found.append(occurrence)
    return found


def validate_spec(spec: RecurrenceSpec, *, weekdays_required: Sequence[int] | None = None) -> list[tuple[str, str]]:
    """Problems with a spec as (field, message) pairs; empty when valid."""
    problems: list[tuple[str, str]] = []
    if spec.kind not in RecurrenceKind.values:
        return [("recurrence.kind", f"unknown recurrence kind {spec.kind!r}; expected one of {RecurrenceKind.values}")]
    if spec.first_due_day < 0:
        problems.append(("first_due.day", "must be 0 or more"))
    if spec.kind == RecurrenceKind.INTERVAL:
        hours, days = spec.every_hours, spec.every_days
        if (hours is None) == (days is None):
            problems.append(("recurrence", "interval needs exactly one of every_hours or every_days"))
        for name, value in (("every_hours", hours), ("every_days", days)):
            if value is not None and (not isinstance(value, int) or value < 1):
                problems.append((f"recurrence.{name}", "must be a whole number of at least 1"))
    if spec.kind == RecurrenceKind.WEEKDAYS:
        if not spec.weekdays:
            problems.append(("recurrence.weekdays", "weekdays needs at least one day"))
        if any(not isinstance(d, int) or not 0 <= d <= 6 for d in spec.weekdays):
            problems.append(("recurrence.weekdays", "days must be MO, TU, WE, TH, FR, SA or SU"))
    if spec.kind == RecurrenceKind.AFTER_COMPLETION and (
        not isinstance(spec.hours_after_completion, int) or spec.hours_after_completion < 1
    ):
        problems.append(("recurrence.hours", "after_completion needs hours, a whole number of at least 1"))
    if spec.count is not None and (not isinstance(spec.count, int) or spec.count < 1):
        problems.append(("recurrence.count", "must be a whole number of at least 1"))
    if spec.until_day is not None and (not isinstance(spec.until_day, int) or spec.until_day < spec.first_due_day):
        problems.append(("recurrence.until_day", "must be a whole number no earlier than first_due.day"))
    return problems
