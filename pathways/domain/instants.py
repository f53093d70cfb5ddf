"""The one reading of dates and datetimes that arrive from outside (API bodies and query parameters), with the
bounds a clinician would accept (docs/api.md, "Dates and times").

A datetime must carry its UTC offset ("Z" or "+hh:mm"): a naive "2026-11-29T08:00:00" read as UTC is six hours
off at a Chicago site (issue 12). Offsets beyond the real-world range and years PostgreSQL or Python cannot
convert (0001, 9999 with an offset) are rejected here, before any query is built.
"""

from __future__ import annotations

import datetime as dt
import re

from pathways.errors import InvalidInput

# Every date or datetime accepted anywhere: bodies and query filters (PostgreSQL holds far more; these keep
# every conversion in range and every typo out). A year such as 0001 or 9999 is a typo or a probe.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)  # exclusive
# Real-world UTC offsets run from -12:00 to +14:00; PostgreSQL rejects beyond +-15:59.
MAX_OFFSET = dt.timedelta(hours=14)
# Clinical times (an observation's or medication change's effective_at): not before this, not in the future.
CLINICAL_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# Birth dates: from this day to today.
BIRTH_DATE_EARLIEST = dt.date(1900, 1, 1)
# How far ahead a task may be held ("until").
MAX_HOLD = dt.timedelta(days=366)

# RFC 3339 / ISO 8601 extended format with an offset; fractional seconds optional. ASCII digits only.
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})", re.ASCII
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)

DATETIME_HELP = "an ISO 8601 date-time with a UTC offset (Z or +hh:mm), years 1900-2999"


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field_name} {message}", fields={field_name: [message]})


def parse_aware_datetime(value: object, *, field_name: str) -> dt.datetime:
    """An aware datetime from "YYYY-MM-DDTHH:MM[:SS[.ffffff]]" followed by "Z" or "+hh:mm" (also accepted:
    an aware datetime object). Raises InvalidInput naming `field_name` when the value is not a string in that
    form, has no offset (a bare date included), has an offset beyond +-14:00, or falls outside
    [EARLIEST, LATEST)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _invalid(field_name, "needs a UTC offset (Z or +hh:mm)")
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if not _DATETIME.fullmatch(text):
            if _DATE.fullmatch(text):
                raise _invalid(field_name, "needs a time and a UTC offset (Z or +hh:mm), not only a date")
            if _DATETIME.fullmatch(text + "Z"):
                raise _invalid(field_name, "needs a UTC offset (Z or +hh:mm)")
            raise _invalid(field_name, f"must be {DATETIME_HELP}")
        try:
            moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise _invalid(field_name, f"must be {DATETIME_HELP}") from None
    else:
        raise _invalid(field_name, f"must be {DATETIME_HELP}")
    offset = moment.utcoffset()
    if offset is None or abs(offset) > MAX_OFFSET:
        raise _invalid(field_name, "has a UTC offset outside -14:00..+14:00")
    check_datetime_bounds(moment, field_name=field_name)
    return moment


def check_datetime_bounds(
    moment: dt.datetime, *, field_name: str, earliest: dt.datetime = EARLIEST, latest: dt.datetime = LATEST
) -> dt.datetime:
    """`moment` unchanged when earliest <= moment < latest, else InvalidInput naming the field and the range."""
    if not earliest <= moment < latest:
        raise _invalid(field_name, f"must be from {earliest.date().isoformat()} and before {latest.isoformat()}")
    return moment


def parse_date(value: object, *, field_name: str) -> dt.date:
    """A calendar date from "YYYY-MM-DD" (ASCII digits) between EARLIEST and LATEST; else InvalidInput."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = value
    elif isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _invalid(field_name, "must be a date YYYY-MM-DD") from None
    else:
        raise _invalid(field_name, "must be a date YYYY-MM-DD")
    if not EARLIEST.date() <= day < LATEST.date():
        raise _invalid(field_name, f"must be from {EARLIEST.date().isoformat()} and before {LATEST.date().isoformat()}")
    return day


def check_clinical_time(moment: dt.datetime, *, now: dt.datetime, field_name: str = "effective_at") -> dt.datetime:
    """A clinical event time: from CLINICAL_EARLIEST up to five minutes after `now` (clock skew between a lab
    system and this server). Else InvalidInput naming the field."""
    if moment < CLINICAL_EARLIEST:
        raise _invalid(field_name, f"cannot be before {CLINICAL_EARLIEST.date().isoformat()}")
    if moment > now + dt.timedelta(minutes=5):
        raise _invalid(field_name, "cannot be in the future")
    return moment


def check_birth_date(day: dt.date, *, today: dt.date, field_name: str = "birth_date") -> dt.date:
    """A birth date from BIRTH_DATE_EARLIEST to `today`; else InvalidInput naming the field."""
    if day > today:
        raise _invalid(field_name, "cannot be in the future")
    if day < BIRTH_DATE_EARLIEST:
        raise _invalid(field_name, f"cannot be before {BIRTH_DATE_EARLIEST.isoformat()}")
    return day


def check_hold_until(moment: dt.datetime, *, now: dt.datetime, field_name: str = "until") -> dt.datetime:
    """A hold's end: after `now` and at most MAX_HOLD (366 days) ahead; else InvalidInput naming the field."""
    if moment <= now:
        raise _invalid(field_name, "must be in the future")
    if moment > now + MAX_HOLD:
        raise _invalid(field_name, f"must be within {MAX_HOLD.days} days")
    return moment
