"""Database constraints make duplicates impossible, not merely unlikely."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from pathways.models import Patient, Schedule, Task
from pathways.services.enrollment import enrollment_apply
from tests.factories import PatientFactory, SiteFactory

# PostgreSQL names the violated constraint; SQLite names its columns. Either identifies the same rule.
MRN = r"unique_mrn_per_site|pathways_patient\.site_id, pathways_patient\.mrn"
OCCURRENCE = r"unique_schedule_occurrence|pathways_task\.schedule_id, pathways_task\.occurrence"
SCHEDULE = r"unique_per_enrollment|pathways_schedule\.enrollment_id, pathways_schedule\.task_template_id"


def test_an_mrn_is_unique_per_site_but_may_repeat_across_sites(db) -> None:
    chicago, phoenix = SiteFactory(code="chi"), SiteFactory(code="phx", timezone="America/Phoenix")
    PatientFactory(site=chicago, mrn="MRN-1")
    PatientFactory(site=phoenix, mrn="MRN-1")
    with pytest.raises(IntegrityError, match=MRN), transaction.atomic():
        PatientFactory(site=chicago, mrn="MRN-1")
    assert Patient.objects.filter(mrn="MRN-1").count() == 2


def test_a_schedule_occurrence_can_exist_only_once(pathway, coordinator, site) -> None:
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator
    )
    task = Task.objects.filter(enrollment=enrollment, schedule__isnull=False).first()
    assert task is not None
    with pytest.raises(IntegrityError, match=OCCURRENCE), transaction.atomic():
        Task.objects.create(
            enrollment=enrollment,
            schedule=task.schedule,
            occurrence=task.occurrence,
            title="dup",
            prong=task.prong,
            role=task.role,
            available_at=task.available_at,
            due_at=task.due_at,
        )
    with pytest.raises(IntegrityError, match="occurrence_with_schedule"), transaction.atomic():
        Task.objects.create(
            enrollment=enrollment,
            schedule=None,
            occurrence=3,
            title="x",
            prong=task.prong,
            role=task.role,
            available_at=task.available_at,
            due_at=task.due_at,
        )
    with pytest.raises(IntegrityError, match=SCHEDULE), transaction.atomic():
        Schedule.objects.create(
            enrollment=enrollment, task_template=task.schedule.task_template, anchor_at=task.available_at
        )
