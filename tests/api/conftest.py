"""API fixtures: a small world with an in-scope enrollment, another site's and another team's enrollment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from pathways.choices import Role
from pathways.models import CareTeamMember, Enrollment, Notification, PathwayTemplate, Patient, Site, Task, User
from pathways.services.enrollment import care_team_add, enrollment_apply
from tests.factories import PatientFactory, UserFactory


@dataclass
class World:
    site: Site
    other_site: Site
    pathway: PathwayTemplate
    users: dict[str, User]
    patient: Patient
    enrollment: Enrollment
    task: Task  # a wound-nursing task in the pool of `enrollment`, whose care team includes the wound nurse
    member: CareTeamMember  # the wound nurse's membership
    other_site_patient: Patient
    other_site_enrollment: Enrollment
    other_site_task: Task
    other_site_member: CareTeamMember
    other_team_patient: Patient  # same site, but the wound nurse is not on its care team
    other_team_enrollment: Enrollment
    other_team_task: Task
    other_team_member: CareTeamMember  # the nephrologist's
    spare_patient: Patient  # at the site, not enrolled


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def wound_task(enrollment: Enrollment) -> Task:
    return Task.objects.filter(enrollment=enrollment, role=Role.WOUND_NURSING, template__code="wound-assessment").get()


@pytest.fixture
def world(pathway, site, other_site, coordinator, auditor, admin_user, wound_nurse, nephrologist) -> World:
    now = dt.datetime.now(dt.UTC)
    patient = PatientFactory(site=site)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=now)
    member = care_team_add(
        enrollment_id=enrollment.pk, user=wound_nurse, role=Role.WOUND_NURSING, actor=coordinator, now=now
    )

    other_nurse = UserFactory(username="nyc-wound", roles=[Role.WOUND_NURSING], sites=[other_site])
    other_site_patient = PatientFactory(site=other_site)
    other_site_enrollment = enrollment_apply(
        patient_id=other_site_patient.pk, pathway_slug="calciphylaxis", actor=None, now=now
    )
    other_site_member = care_team_add(
        enrollment_id=other_site_enrollment.pk, user=other_nurse, role=Role.WOUND_NURSING, actor=None, now=now
    )

    other_team_patient = PatientFactory(site=site)
    other_team_enrollment = enrollment_apply(
        patient_id=other_team_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=now
    )
    other_team_member = care_team_add(
        enrollment_id=other_team_enrollment.pk, user=nephrologist, role=Role.NEPHROLOGY, actor=coordinator, now=now
    )
    return World(
        site=site,
        other_site=other_site,
        pathway=pathway,
        users={
            "coordinator": coordinator,
            "auditor": auditor,
            "admin": admin_user,
            "wound_nurse": wound_nurse,
            "nephrologist": nephrologist,
        },
        patient=patient,
        enrollment=enrollment,
        task=wound_task(enrollment),
        member=member,
        other_site_patient=other_site_patient,
        other_site_enrollment=other_site_enrollment,
        other_site_task=wound_task(other_site_enrollment),
        other_site_member=other_site_member,
        other_team_patient=other_team_patient,
        other_team_enrollment=other_team_enrollment,
        other_team_task=wound_task(other_team_enrollment),
        other_team_member=other_team_member,
        spare_patient=PatientFactory(site=site),
    )


def notify(user: User, task: Task, key: str = "k") -> Notification:
    return Notification.objects.create(
        user=user,
        task=task,
        kind="assigned",
        message=f"task {task.pk} assigned",
        dedupe_key=key,
        created_at=task.created_at,
    )


@pytest.fixture
def empty_compiled_caches() -> Any:
    """No kept page or lookup from an earlier test (pathways.api.compiled), and none left behind."""
    from pathways.api import compiled

    compiled.pages.clear()
    compiled.lookups.clear()
    yield
    compiled.pages.clear()
    compiled.lookups.clear()
