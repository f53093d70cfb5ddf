"""Which task templates apply to a patient: the template's stage and its `applies_if` condition, evaluated on the
patient.

Enrollment, confirming a diagnosis, the enrollment preview, re-planning after a change to the patient
(services/replan.py), the rule engine and the benchmark data generator all ask here, so they cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pathways.choices import DiagnosisStatus, PathwayStage

if TYPE_CHECKING:
    from pathways.models import Patient, TaskTemplate


def template_applies(template: TaskTemplate, patient: Patient, *, stage: str | None = PathwayStage.TREATMENT) -> bool:
    """Does a template belong to `stage` and does its applicability condition hold for this patient?

    `stage` is a PathwayStage value: "workup" while the diagnosis is suspected, "treatment" from the diagnosis on
    (the default: enrolment directly in treatment). None skips the stage test (a rule creating a task from a
    template asks only whether the patient is one the template is for).
    """
    if stage is not None and template.stage != stage:
        return False
    condition = template.applies_if or {}
    modalities = condition.get("dialysis_modality")
    if modalities and patient.dialysis_modality not in modalities:
        return False
    medications = condition.get("medications_any")
    return not (medications and not set(medications) & set(patient.risk_medications or []))


# The stage whose templates run for an enrollment in each diagnosis status (refuted: none; the enrollment ends).
STAGE_FOR_DIAGNOSIS: dict[str, str] = {
    DiagnosisStatus.PROVISIONAL: PathwayStage.WORKUP,
    DiagnosisStatus.CONFIRMED: PathwayStage.TREATMENT,
}


def enrollment_stage(diagnosis_status: str) -> str:
    """The PathwayStage an enrollment in `diagnosis_status` (a DiagnosisStatus value) is in: "workup" while
    suspected, "treatment" once confirmed. Raises KeyError for "refuted" (a ruled-out enrollment has no stage)."""
    return STAGE_FOR_DIAGNOSIS[diagnosis_status]


def precautions_for_role(precautions: list[dict[str, Any]] | None, role: str) -> list[dict[str, Any]]:
    """The standing precautions (PathwayTemplate.precautions: [{code, text, roles, citation}]) naming `role`."""
    return [p for p in precautions or [] if role in p.get("roles", [])]
