"""Registering patients (synthetic data only in this repository)."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from pathways.choices import LIVE_ENROLLMENT_STATUSES, Sex
from pathways.domain import instants
from pathways.errors import Conflict, NotFound, NotPermitted
from pathways.models import Enrollment, Patient, Site, User
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
    """Register a patient at a site; the MRN is unique per site (the database constraint decides races).

    Raises NotPermitted, Conflict (MRN taken) and InvalidInput (a birth date before 1900-01-01 or in the future,
    instants.check_birth_date)."""
    if not can_register_patient(actor, site):
        raise NotPermitted("only a coordinator at this site can register patients")
    instants.check_birth_date(birth_date, today=timezone.localdate())
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


# Fields that place schedules in time: changing them under a live enrollment would leave its schedules wrong.
SCHEDULE_FIELDS = ("dialysis_modality", "dialysis_days", "dialysis_session_time")


@transaction.atomic
def patient_update(
    *,
    patient_id: int,
    actor: User | None,
    mrn: str,
    given_name: str,
    family_name: str,
    birth_date: dt.date,
    sex: str,
    dialysis_modality: str,
    dialysis_days: list[int],
    dialysis_session_time: dt.time | None,
    risk_factors: list[str],
    risk_medications: list[str],
) -> Patient:
    """Edit a registered patient (every field but the site); returns the saved Patient.

    Raises NotFound (no such patient), NotPermitted (not a coordinator at the patient's site), Conflict when the
    MRN is taken at the site, or when the dialysis modality, days or session time change while the patient has
    a live (active or on-hold) enrollment: re-planning its schedules is not supported yet (issue 14), so the
    change is refused rather than leaving the schedules on the old days.
    """
    try:
        patient = Patient.objects.select_for_update().select_related("site").get(pk=patient_id)
    except Patient.DoesNotExist as exc:
        raise NotFound(f"patient {patient_id} not found") from exc
    if not can_register_patient(actor, patient.site):
        raise NotPermitted("only a coordinator at this site can edit patients")
    days = sorted(set(dialysis_days))
    new_values: dict[str, object] = {
        "dialysis_modality": dialysis_modality,
        "dialysis_days": days,
        "dialysis_session_time": dialysis_session_time,
    }
    current = {
        **{name: getattr(patient, name) for name in SCHEDULE_FIELDS},
        "dialysis_days": sorted(set(patient.dialysis_days or [])),
    }
    changed = [name for name in SCHEDULE_FIELDS if current[name] != new_values[name]]
    if changed and Enrollment.objects.filter(patient=patient, status__in=LIVE_ENROLLMENT_STATUSES).exists():
        message = (
            "the patient has a live enrollment whose schedules follow the dialysis modality, days and session "
            "time; changing them needs re-planning (issue 14), so end or revoke the enrollment first"
        )
        raise Conflict(message, fields={name: ["cannot change while enrolled (issue 14)"] for name in changed})
    duplicate = Conflict(
        f"MRN {mrn} is already registered at {patient.site.code}", fields={"mrn": ["already registered"]}
    )
    if Patient.objects.filter(site_id=patient.site_id, mrn=mrn).exclude(pk=patient.pk).exists():
        raise duplicate
    instants.check_birth_date(birth_date, today=timezone.localdate())
    patient.mrn, patient.given_name, patient.family_name = mrn, given_name, family_name
    patient.birth_date, patient.sex = birth_date, sex
    patient.dialysis_modality, patient.dialysis_days = dialysis_modality, days
    patient.dialysis_session_time = dialysis_session_time
    patient.risk_factors, patient.risk_medications = list(risk_factors), list(risk_medications)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as exc:  # a concurrent registration took the MRN; the constraint decides
        raise duplicate from exc
    return patient
