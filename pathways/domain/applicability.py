"""Which task templates apply to a patient: the `applies_if` condition of a template, evaluated on the patient.

Enrollment, the enrollment preview, re-planning after a change to the patient (services/replan.py) and the
benchmark data generator all ask here, so they cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathways.models import Patient, TaskTemplate


def template_applies(template: TaskTemplate, patient: Patient) -> bool:
    """Does a template's applicability condition hold for this patient record (at enrollment, or before and after
    a change when re-planning)?"""
    condition = template.applies_if or {}
    modalities = condition.get("dialysis_modality")
    if modalities and patient.dialysis_modality not in modalities:
        return False
    medications = condition.get("medications_any")
    return not (medications and not set(medications) & set(patient.risk_medications or []))
