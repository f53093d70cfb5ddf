"""Registering patients (synthetic data only in this repository)."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from pathways.choices import Sex
from pathways.errors import Conflict, NotPermitted
from pathways.models import Patient, Site, User
from pathways.selectors.access import can_register_patient


@transaction.atomic
def patient_create(
    *,
    site: Site,
    mrn: str,
    given_name: str,
    family_name: str,
    birth_date: dt.date,
    dialysis_modality: str,
    actor: User | None,
    sex: str = Sex.UNKNOWN,
    dialysis_days: list[int] | None = None,
    dialysis_session_time: dt.time | None = None,
    risk_factors: list[str] | None = None,
    risk_medications: list[str] | None = None,
) -> Patient:
    """Register a patient at a site; the MRN is unique per site (the database constraint decides races)."""
    if not can_register_patient(actor, site):
        raise NotPermitted("only a coordinator at this site can register patients")
    duplicate = Conflict(f"MRN {mrn} is already registered at {site.code}", fields={"mrn": ["already registered"]})
    if Patient.objects.filter(site=site, mrn=mrn).exists():
        raise duplicate
    try:
        with transaction.atomic():
            return Patient.objects.create(
                site=site,
                mrn=mrn,
                given_name=given_name,
                family_name=family_name,
                birth_date=birth_date,
                dialysis_modality=dialysis_modality,
                sex=sex,
                dialysis_days=sorted(set(dialysis_days or [])),
                dialysis_session_time=dialysis_session_time,
                risk_factors=list(risk_factors or []),
                risk_medications=list(risk_medications or []),
            )
    except IntegrityError as exc:
        raise duplicate from exc
