"""Fixtures for clinical data and rules: an enrolled hemodialysis patient and a recorder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from pathways.choices import DialysisModality
from pathways.models import Enrollment, PathwayTemplate, User
from pathways.services.enrollment import enrollment_apply
from pathways.services.observations import ClinicalRecordResult, ObservationInput, observations_record
from tests.factories import PatientFactory

# Monday 2026-03-02 15:00 UTC = 09:00 in Chicago (CST).
ENROLLED_AT = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def hd_patient(site):
    # On cinacalcet, so that "PTH > 9x upper normal despite cinacalcet" can fire (tests/clinical/test_therapies.py
    # shows it does not without).
    return PatientFactory(
        site=site,
        dialysis_modality=DialysisModality.HEMODIALYSIS,
        dialysis_days=[0, 2, 4],
        current_therapies=["cinacalcet"],
    )


@pytest.fixture
def enrollment(pathway: PathwayTemplate, coordinator: User, hd_patient) -> Enrollment:
    return enrollment_apply(patient_id=hd_patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=ENROLLED_AT)


Recorder = Callable[..., ClinicalRecordResult]


@pytest.fixture
def record(enrollment: Enrollment) -> Recorder:
    """record(("phosphate", 6, "mg/dL"), ..., hours=N): values taken N hours after enrollment, by the system."""
    clock = {"hours": 0}

    def _record(
        *values: tuple[Any, ...], hours: float | None = None, findings: tuple[str, ...] = ()
    ) -> ClinicalRecordResult:
        clock["hours"] = clock["hours"] + 1 if hours is None else hours
        at = ENROLLED_AT + dt.timedelta(hours=clock["hours"])
        return observations_record(
            enrollment_id=enrollment.pk,
            values=[ObservationInput(*v) for v in values],
            findings=findings,
            actor=None,
            effective_at=at,
            now=at,
        )

    return _record


def fired(result: ClinicalRecordResult, rule_code: str) -> bool:
    return any(f.rule_code == rule_code for f in result.firings)
