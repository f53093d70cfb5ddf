"""Recording risk-medication changes for an enrolled patient; the rules decide what review they need."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from pathways.choices import MedicationChangeKind, MedicationRoute, RiskMedication
from pathways.domain import instants
from pathways.errors import InvalidInput
from pathways.models import MedicationChange, RuleFiring, Task, User
from pathways.services.observations import enrollment_for_clinical_write
from pathways.services.replan import enrollments_replan
from pathways.services.rules import RuleTrigger, rules_evaluate

logger = logging.getLogger(__name__)


@dataclass
class MedicationChangeResult:
    change: MedicationChange
    firings: list[RuleFiring] = field(default_factory=list)
    tasks_created: list[Task] = field(default_factory=list)


@transaction.atomic
def medication_change_record(
    *,
    enrollment_id: int,
    medication: str,
    drug_name: str,
    kind: str = MedicationChangeKind.STARTED,
    route: str = "",
    effective_at: dt.datetime | None = None,
    note: str = "",
    actor: User | None,
    now: dt.datetime | None = None,
) -> MedicationChangeResult:
    """Record a risk medication started, changed or stopped; a new order or a dose change fires the
    medication-review rule (the pathway's rules decide: `medication_started`, `medication_dose_changed`).

    The patient's current risk-medication list follows (started or dose changed adds, stopped removes), and the
    enrollment is re-planned when the list changed (services/replan.py); what was captured at enrollment stays
    on the enrollment as it was. `route` (a MedicationRoute value, "" when not recorded) is what a precaution
    rule reads: the bundled pathway flags a subcutaneous route (rule subcutaneous-injection). Raises
    InvalidInput (unknown medication, kind or route; no drug name).
    """
    now = now or timezone.now()
    if medication not in RiskMedication.values:
        accepted = ", ".join(RiskMedication.values)
        raise InvalidInput(
            f"unknown risk medication {medication!r}; accepted: {accepted}",
            fields={"medication": [f"use one of: {accepted}"]},
        )
    if kind not in MedicationChangeKind.values:
        accepted = ", ".join(MedicationChangeKind.values)
        raise InvalidInput(
            f"unknown change {kind!r}; accepted: {accepted}", fields={"kind": [f"use one of: {accepted}"]}
        )
    if route and route not in MedicationRoute.values:
        accepted = ", ".join(MedicationRoute.values)
        raise InvalidInput(
            f"unknown route {route!r}; accepted: {accepted}", fields={"route": [f"use one of: {accepted}"]}
        )
    drug_name = drug_name.strip()
    if not drug_name:
        raise InvalidInput("name the drug as ordered", fields={"drug_name": ["required"]})
    effective_at = effective_at or now
    instants.check_clinical_time(effective_at, now=now)
    enrollment = enrollment_for_clinical_write(actor=actor, enrollment_id=enrollment_id)

    change = MedicationChange.objects.create(
        enrollment=enrollment,
        medication=medication,
        drug_name=drug_name[:200],
        kind=kind,
        route=route,
        note=note.strip(),
        effective_at=effective_at,
        recorded_at=now,
        recorded_by=actor,
    )
    patient = enrollment.patient
    before = copy.copy(patient)
    current = list(patient.risk_medications or [])
    # A dose change is of a medication the patient takes: like a new order, it puts it on the list if missing.
    if kind in (MedicationChangeKind.STARTED, MedicationChangeKind.DOSE_CHANGED) and medication not in current:
        patient.risk_medications = [*current, medication]
        patient.save(update_fields=["risk_medications"])
    elif kind == MedicationChangeKind.STOPPED and medication in current:
        patient.risk_medications = [m for m in current if m != medication]
        patient.save(update_fields=["risk_medications"])
    if patient.risk_medications != before.risk_medications:
        # Stopping warfarin ends INR monitoring; starting it starts it (services/replan.py).
        enrollments_replan(enrollments=[enrollment], before=before, after=patient, actor=actor, now=now)

    outcome = rules_evaluate(enrollment=enrollment, trigger=RuleTrigger(medication_change=change), actor=actor, now=now)
    logger.info("medication change recorded: enrollment=%s change=%s kind=%s", enrollment.pk, change.pk, kind)
    return MedicationChangeResult(change=change, firings=outcome.firings, tasks_created=outcome.tasks_created)
