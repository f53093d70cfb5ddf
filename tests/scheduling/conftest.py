"""Scheduling fixtures: enrolment helpers and time-travelled sweeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import time_machine
from django.utils import timezone

from pathways.models import Enrollment, PathwayTemplate, Patient, Schedule, Task, User
from pathways.services.enrollment import enrollment_apply
from pathways.services.sweeps import SweepReport, schedules_materialize_due

# Monday 2026-03-02 15:00 UTC = 09:00 in Chicago (CST, UTC-6).
MONDAY = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def enroll(pathway: PathwayTemplate, coordinator: User) -> Callable[..., Enrollment]:
    def _enroll(patient: Patient, at: dt.datetime = MONDAY, with_coordinator: bool = True) -> Enrollment:
        with time_machine.travel(at, tick=False):
            return enrollment_apply(
                patient_id=patient.pk,
                pathway_slug="calciphylaxis",
                actor=coordinator,
                coordinator=coordinator if with_coordinator else None,
                now=at,
            )

    return _enroll


def sweep_at(at: dt.datetime, **kwargs: object) -> SweepReport:
    """Run the materializer as the clock reads `at` (time travelled, as beat would at that moment)."""
    with time_machine.travel(at, tick=False):
        return schedules_materialize_due(now=timezone.now(), **kwargs)  # type: ignore[arg-type]


def sweep_every(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> Iterator[SweepReport]:
    at = start
    while at <= end:
        yield sweep_at(at)
        at += step


def tasks_of(enrollment: Enrollment, code: str) -> list[Task]:
    return list(Task.objects.filter(enrollment=enrollment, template__code=code).order_by("occurrence"))


def schedule_of(enrollment: Enrollment, code: str) -> Schedule:
    return Schedule.objects.select_related("task_template").get(enrollment=enrollment, task_template__code=code)


@pytest.fixture
def custom_schedule(db: None) -> Callable[..., Schedule]:
    """A schedule for an ad-hoc template (kinds and bounds the shipped pathway does not use) on an enrollment."""
    from pathways.choices import Prong, Role, ScheduleStatus, TemplateStatus
    from pathways.domain.recurrence import PatientCalendar, RecurrenceSpec, first_occurrence
    from pathways.models import TaskTemplate

    def _make(enrollment: Enrollment, *, code: str, kind: str, first_due: dict, recurrence: dict) -> Schedule:
        test_pathway, _ = PathwayTemplate.objects.get_or_create(
            slug="test-kinds", version=1, defaults={"title": "test kinds", "status": TemplateStatus.DRAFT}
        )
        template = TaskTemplate.objects.create(
            pathway=test_pathway,
            code=code,
            title=f"Test {code}",
            prong=Prong.SUPPORT,
            role=Role.NEPHROLOGY,
            first_due=first_due,
            due_within_hours=1,
            recurrence_kind=kind,
            recurrence=recurrence,
        )
        anchor = enrollment.enrolled_at
        first = first_occurrence(
            RecurrenceSpec.for_template(template), anchor=anchor, cal=PatientCalendar.for_patient(enrollment.patient)
        )
        return Schedule.objects.create(
            enrollment=enrollment,
            task_template=template,
            anchor_at=anchor,
            next_due_at=first,
            status=ScheduleStatus.ACTIVE if first else ScheduleStatus.FINISHED,
        )

    return _make
