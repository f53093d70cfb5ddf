"""Registering patients (synthetic data only in this repository)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from pathways.choices import LIVE_ENROLLMENT_STATUSES, DialysisModality, Sex
from pathways.domain import instants
from pathways.errors import Conflict, InvalidInput, NotFound, NotPermitted
from pathways.models import Enrollment, Patient, Site, User
from pathways.selectors.access import can_register_patient
from pathways.services.replan import ReplanOutcome, enrollments_replan


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
    current_therapies: list[str] | None = None,
) -> Patient:
    """Register a patient at a site; the MRN is unique per site (the database constraint decides races).

    Raises NotPermitted, Conflict (MRN taken) and InvalidInput (a birth date before 1900-01-01 or in the future,
    instants.check_birth_date; a haemodialysis patient without dialysis days, which is refused rather than
    registered with no sodium thiosulfate: docs/scheduling.md, "A missing dialysis schedule")."""
    if not can_register_patient(actor, site):
        raise NotPermitted("only a coordinator at this site can register patients")
    instants.check_birth_date(birth_date, today=timezone.localdate())
    _check_dialysis_schedule(dialysis_modality, list(dialysis_days or []))
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
                current_therapies=list(dict.fromkeys(current_therapies or [])),
            )
    except IntegrityError as exc:
        raise duplicate from exc


# What a coordinator may change (every field but the site: moving a patient between sites changes who may see them).
EDITABLE_FIELDS = (
    "mrn",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "dialysis_modality",
    "dialysis_days",
    "dialysis_session_time",
    "risk_factors",
    "risk_medications",
    "current_therapies",
)
# Fields the plan of a live enrollment follows: a change to one re-plans it (services/replan.py).
PLAN_FIELDS = ("dialysis_modality", "dialysis_days", "dialysis_session_time", "risk_medications")


def _check_dialysis_schedule(modality: str, days: list[int]) -> None:
    """A haemodialysis patient must have dialysis days: every session-bound task (sodium thiosulfate, pain at the
    session) is planned on them, and without them it would silently never come (issue 14; docs/scheduling.md)."""
    if modality == DialysisModality.HEMODIALYSIS and not days:
        raise InvalidInput(
            "a haemodialysis patient needs dialysis days: sodium thiosulfate and the other session-bound work is "
            "planned on them; record the days of the patient's sessions (e.g. Mon, Wed, Fri)",
            fields={"dialysis_days": ["required for haemodialysis"]},
        )


@dataclass
class PatientUpdateResult:
    """The saved patient, and what re-planning did to each live enrollment (empty when the plan did not change)."""

    patient: Patient
    replanned: list[ReplanOutcome] = field(default_factory=list)


@transaction.atomic
def patient_update(
    *,
    patient_id: int,
    actor: User | None,
    changes: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> PatientUpdateResult:
    """Edit a registered patient: `changes` maps some of EDITABLE_FIELDS to new values (a PATCH; the form sends
    them all). A change to a PLAN_FIELDS field re-plans every live enrollment of the patient from now
    (services/replan.py): schedules follow the new dialysis calendar from the next session, templates that stop
    or start applying end or start, each with its reason.

    Returns the saved patient and the re-planning done per enrollment. Raises NotFound (no such patient),
    NotPermitted (not a coordinator at the patient's site), InvalidInput (a field this service does not edit, a
    birth date out of range, a haemodialysis patient without dialysis days) and Conflict (the MRN is taken at
    the site). Nothing is saved when it raises.
    """
    now = now or timezone.now()
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"these fields cannot be edited: {', '.join(unknown)}", fields={name: ["not editable"] for name in unknown}
        )
    # Enrollments first, then the patient: the order clinical writes take them (a medication change locks its
    # enrollment, then saves the patient's medication list), so the two cannot deadlock.
    live = Enrollment.objects.select_for_update().filter(patient_id=patient_id, status__in=LIVE_ENROLLMENT_STATUSES)
    list(live.order_by("pk").values_list("pk", flat=True))
    try:
        patient = Patient.objects.select_for_update().select_related("site").get(pk=patient_id)
    except Patient.DoesNotExist as exc:
        raise NotFound(f"patient {patient_id} not found") from exc
    if not can_register_patient(actor, patient.site):
        raise NotPermitted("only a coordinator at this site can edit patients")
    before = copy.copy(patient)
    values = {name: changes.get(name, getattr(patient, name)) for name in EDITABLE_FIELDS}
    values["dialysis_days"] = sorted(set(values["dialysis_days"] or []))
    for name in ("risk_factors", "risk_medications", "current_therapies"):
        values[name] = list(dict.fromkeys(values[name] or []))
    _check_dialysis_schedule(values["dialysis_modality"], values["dialysis_days"])
    instants.check_birth_date(values["birth_date"], today=timezone.localdate())
    mrn = values["mrn"]
    duplicate = Conflict(
        f"MRN {mrn} is already registered at {patient.site.code}", fields={"mrn": ["already registered"]}
    )
    if Patient.objects.filter(site_id=patient.site_id, mrn=mrn).exclude(pk=patient.pk).exists():
        raise duplicate
    for name, value in values.items():
        setattr(patient, name, value)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as exc:  # a concurrent registration took the MRN; the constraint decides
        raise duplicate from exc
    outcomes: list[ReplanOutcome] = []
    if any(_normal(getattr(before, name)) != _normal(getattr(patient, name)) for name in PLAN_FIELDS):
        # Again, now that the patient is locked: an enrolment that committed in between is re-planned too.
        enrollments = list(live.select_related("template").order_by("pk"))
        outcomes = enrollments_replan(enrollments=enrollments, before=before, after=patient, actor=actor, now=now)
    return PatientUpdateResult(patient=patient, replanned=outcomes)


def _normal(value: object) -> object:
    # Lists compare as sets: the order of days or medications is not a change.
    return sorted(value) if isinstance(value, list) else value
