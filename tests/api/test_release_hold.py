"""Releasing a sodium thiosulfate safety hold through the API."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from pathways.choices import ScheduleStatus
from pathways.models import Schedule, Task
from pathways.services.enrollment import care_team_add, enrollment_apply
from pathways.services.observations import observation_record
from pathways.services.sweeps import schedules_materialize_due
from tests.factories import PatientFactory

MONDAY = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def held(pathway, coordinator, nephrologist, site):
    patient = PatientFactory(site=site, dialysis_days=[0, 2, 4])
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=MONDAY)
    care_team_add(enrollment_id=enrollment.pk, user=nephrologist, role="nephrology", actor=coordinator, now=MONDAY)
    observation_record(
        enrollment_id=enrollment.pk,
        code="systolic_bp",
        value=84,
        unit="mmHg",
        actor=None,
        effective_at=MONDAY,
        now=MONDAY,
    )
    return enrollment


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _sts(enrollment) -> Schedule:
    return Schedule.objects.get(enrollment=enrollment, task_template__code="sodium-thiosulfate")


def test_the_teams_nephrologist_releases_the_hold_and_doses_come_due_again(held, nephrologist) -> None:
    assert _sts(held).status == ScheduleStatus.PAUSED
    schedules_materialize_due(now=MONDAY + dt.timedelta(days=3))
    assert not Task.objects.filter(enrollment=held, template__code="sodium-thiosulfate").exists()

    response = _client(nephrologist).post(
        f"/api/v1/enrollments/{held.pk}/release-hold/",
        {"template": "sodium-thiosulfate", "reason": "BP 118"},
        format="json",
    )
    assert response.status_code == 200, response.content
    schedule = _sts(held)
    assert (schedule.status, schedule.pause_reason) == (ScheduleStatus.ACTIVE, "")
    schedules_materialize_due(now=schedule.next_due_at)
    assert Task.objects.filter(enrollment=held, template__code="sodium-thiosulfate").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"template": "no-such-template"}, 400, "invalid"),
        ({"template": "pre-dialysis-labs"}, 409, "illegal_transition"),  # exists, but no safety rule held it
        ({"template": "sodium-thiosulfate", "status": "active"}, 400, "invalid"),  # no mass assignment
        ({}, 400, "invalid"),
    ],
)
def test_bad_requests_are_refused_and_the_hold_stays(held, coordinator, body, status, code) -> None:
    response = _client(coordinator).post(f"/api/v1/enrollments/{held.pk}/release-hold/", body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert _sts(held).status == ScheduleStatus.PAUSED
