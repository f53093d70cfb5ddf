"""Operator commands: run_scheduler --as-of and schedule_preview."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from pathways.models import Task
from tests.factories import PatientFactory
from tests.scheduling.conftest import MONDAY, tasks_of


def test_run_scheduler_as_of_materializes_and_reports_each_sweep(enroll, site) -> None:
    enrollment = enroll(PatientFactory(site=site))
    out = StringIO()
    call_command("run_scheduler", "--as-of", "2026-03-03T15:00:00", stdout=out)  # naive: UTC
    text = out.getvalue()
    assert "as of 2026-03-03T15:00:00+00:00" in text
    assert "materialize:" in text and "escalate:" in text and "remind:" in text
    assert [t.available_at for t in tasks_of(enrollment, "pain-score")][-1] == MONDAY + dt.timedelta(days=2)
    count = Task.objects.count()
    call_command("run_scheduler", "--as-of", "2026-03-03T09:00-06:00", "--only", "materialize", stdout=StringIO())
    assert Task.objects.count() == count  # the same moment again: nothing new


def test_run_scheduler_refuses_a_bad_time_and_changes_nothing(enroll, site) -> None:
    enroll(PatientFactory(site=site))
    count = Task.objects.count()
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("run_scheduler", "--as-of", "next tuesday", stdout=StringIO())
    assert Task.objects.count() == count


def test_schedule_preview_prints_dialysis_days_in_the_site_time(enroll, site) -> None:
    enrollment = enroll(PatientFactory(site=site, dialysis_days=[0, 2, 4]))
    out = StringIO()
    with time_machine.travel(MONDAY, tick=False):
        call_command("schedule_preview", str(enrollment.pk), "--days", "14", stdout=out)
    text = out.getvalue()
    lines = text.split("sodium-thiosulfate [dialysis_days]")[1].splitlines()[1:]
    section = [line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("  "))]]
    # From Monday 09:00 for 14 days: the Monday two weeks on (13:00) falls just outside.
    assert [line.split()[0] for line in section] == ["Wed", "Fri", "Mon", "Wed", "Fri"]
    assert all("13:00 C" in line for line in section)  # CST then CDT after March 8
    assert "dressing-change [after_completion]" in text and "task " in text


def test_schedule_preview_of_an_unknown_enrollment_is_a_clear_error(db) -> None:
    with pytest.raises(CommandError, match="not found"):
        call_command("schedule_preview", "999999", stdout=StringIO())
