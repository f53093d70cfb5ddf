"""The enrolment preview says each schedule's timing in words (a user found "Every N hours or days")."""

from __future__ import annotations

import pytest

from pathways.domain.recurrence import RecurrenceSpec


@pytest.mark.parametrize(
    ("kind", "first_due", "recurrence", "words"),
    [
        ("interval", {}, {"every_days": 7}, "every 7 days"),
        ("interval", {}, {"every_days": 1}, "every day"),
        ("interval", {}, {"every_hours": 8}, "every 8 h"),
        ("interval", {}, {"every_days": 3, "count": 10}, "every 3 days, 10 times"),
        ("weekdays", {}, {"weekdays": ["MO", "WE", "FR"], "at": "10:00"}, "Mon, Wed, Fri at 10:00"),
        ("weekdays", {}, {"weekdays": [4, 0]}, "Mon, Fri at 09:00"),
        ("dialysis_days", {}, {}, "on the patient's dialysis days at the session time"),
        ("after_completion", {}, {"hours": 48}, "48 h after each completion"),
        ("once", {}, {}, "once, at enrolment"),
        ("once", {"day": 14, "at": "09:00"}, {}, "once, on day 14 at 09:00"),
        ("interval", {}, {"every_days": 7, "until_day": 90}, "every 7 days, until day 90"),
        ("on_trigger", {}, {}, "only when a rule fires"),
    ],
)
def test_a_schedules_timing_reads_as_a_coordinator_would_say_it(kind, first_due, recurrence, words) -> None:
    spec = RecurrenceSpec.from_fields(kind=kind, first_due=first_due, recurrence=recurrence)
    assert spec.describe() == words
