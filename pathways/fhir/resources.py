"""Carepath rows as FHIR R4 resources, built with the fhir.resources R4B models (so each one is validated as it
is built): Patient, CarePlan, Task, Observation, Flag. Status and code mappings are in docs/fhir.md."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.flag import Flag as FhirFlag
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.task import Task as FhirTask
from fhir.resources.R4B.task import TaskRestriction

from pathways.choices import OPEN_TASK_STATUSES, DerivedCode, ObservationCode, Role, TaskStatus
from pathways.fhir.loinc import LOINC_SYSTEM, UCUM_SYSTEM, preferred_loinc, ucum_for
from pathways.fhir.systems import (
    EXT_LESION,
    FLAG_CODES,
    OBSERVATION_CODES,
    ROLE_CODES,
    TASK_BUSINESS_STATUS,
    TASK_STATUS_REASON,
    TASK_TEMPLATE_CODES,
    mrn_system,
    plan_definition_url,
)
from pathways.models import Enrollment, Flag, Observation, Patient, Task, WoundPhoto

# Carepath statuses that are FHIR codes already; listed so that a new Carepath status fails loudly here.
TASK_STATUS = {s: s for s in ("requested", "accepted", "in-progress", "on-hold", "completed", "cancelled", "failed")}
TASK_STATUS["entered-in-error"] = "entered-in-error"
# "missed" is not a FHIR Task status. FHIR's `failed` is expected work that did not get done, which a missed
# dose is (adherence counts it as not given); `cancelled` reads as work withdrawn, which it was not. The
# statusReason says which kind of failure it was (docs/fhir.md).
TASK_STATUS[TaskStatus.MISSED] = "failed"
TASK_STATUS_REASONS = {TaskStatus.MISSED: "missed"}
CAREPLAN_STATUS = {"active": "active", "on-hold": "on-hold", "completed": "completed", "revoked": "revoked"}


def as_json(resource: Resource) -> dict[str, Any]:
    """The resource as JSON-ready data (FHIR aliases, no empty elements)."""
    data: dict[str, Any] = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def _ref(kind: str, pk: Any, display: str | None = None) -> Reference:
    return Reference(reference=f"{kind}/{pk}", display=display)


def _meta(updated: dt.datetime | None, version: int | None = None) -> Meta | None:
    if updated is None:
        return None
    return Meta(lastUpdated=updated, versionId=str(version) if version is not None else None)


def role_concept(role: str) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=ROLE_CODES, code=role, display=Role(role).label)])


def patient_resource(patient: Patient) -> FhirPatient:
    """Patient: MRN (with the site's system), name, birth date, gender."""
    return FhirPatient(
        id=str(patient.pk),
        identifier=[Identifier(system=mrn_system(patient.site.code), value=patient.mrn)],
        name=[HumanName(family=patient.family_name, given=[patient.given_name])],
        birthDate=patient.birth_date,
        gender=patient.sex,
        meta=_meta(patient.created_at),
    )


def careplan_resource(enrollment: Enrollment) -> CarePlan:
    """CarePlan: an enrollment, instantiating its pinned PlanDefinition version."""
    template = enrollment.template
    return CarePlan(
        id=str(enrollment.pk),
        status=CAREPLAN_STATUS[enrollment.status],
        intent="plan",
        title=template.title,
        instantiatesCanonical=[f"{plan_definition_url(template.slug)}|{template.version}"],
        subject=_ref("Patient", enrollment.patient_id),
        period=Period(start=enrollment.enrolled_at, end=enrollment.ended_at),
        created=enrollment.enrolled_at,
        careTeam=[_ref("CareTeam", enrollment.pk)],
    )


def task_business_status(task: Task, now: dt.datetime) -> str | None:
    """Why an open task is where it is: waiting (prerequisites), overdue, escalated, not-yet-available, due."""
    if task.status not in OPEN_TASK_STATUSES:
        return None
    if task.blocked_by:
        return "waiting-for-prerequisites"
    if task.due_at < now:
        return "escalated" if task.escalation_level else "overdue"
    return "not-yet-available" if task.available_at > now else "due"


def task_resource(task: Task, *, now: dt.datetime | None = None) -> FhirTask:
    """Task: status, business status, owner (assignee) or performerType (role pool), for, basedOn,
    restriction.period (available -> due), executionPeriod (started -> completed), priority."""
    now = now or timezone.now()
    business = task_business_status(task, now)
    code = None
    if task.template is not None:
        code = CodeableConcept(coding=[Coding(system=TASK_TEMPLATE_CODES, code=task.template.code)], text=task.title)
    reason = TASK_STATUS_REASONS.get(TaskStatus(task.status))
    execution = None
    if task.started_at or task.completed_at:
        execution = Period(start=task.started_at or task.completed_at, end=task.completed_at)
    return FhirTask(
        id=str(task.pk),
        meta=_meta(task.updated_at, task.version),
        status=TASK_STATUS[task.status],
        statusReason=(
            CodeableConcept(coding=[Coding(system=TASK_STATUS_REASON, code=reason)], text=reason) if reason else None
        ),
        businessStatus=(
            CodeableConcept(coding=[Coding(system=TASK_BUSINESS_STATUS, code=business)], text=business)
            if business
            else None
        ),
        intent="order",
        priority=task.priority,
        code=code,
        description=task.title,
        for_fhir=_ref("Patient", task.enrollment.patient_id),  # type: ignore[call-arg]  # the alias of "for"
        basedOn=[_ref("CarePlan", task.enrollment_id)],
        authoredOn=task.created_at,
        lastModified=task.updated_at,
        owner=_ref("Practitioner", task.assignee_id) if task.assignee_id else None,
        performerType=[role_concept(task.role)],
        restriction=TaskRestriction(period=Period(start=task.available_at, end=task.due_at)),
        executionPeriod=execution,
    )


def _observation_code(code: str) -> CodeableConcept:
    codings = []
    if code in ObservationCode.values:
        entry = preferred_loinc(code)
        if entry is not None:
            codings.append(Coding(system=LOINC_SYSTEM, code=entry.loinc, display=entry.name))
        label = ObservationCode(code).label
    else:
        label = DerivedCode(code).label
    codings.append(Coding(system=OBSERVATION_CODES, code=code, display=label))
    return CodeableConcept(coding=codings, text=label)


def observation_resource(observation: Observation, *, inputs: list[int] | None = None) -> FhirObservation:
    """Observation in its canonical unit; a derived value (corrected calcium, Ca x P) lists derivedFrom."""
    ucum = ucum_for(observation.code, observation.unit) if observation.code in ObservationCode.values else None
    identifier = None
    if observation.source_identifier:
        system, _, value = observation.source_identifier.partition("|")
        identifier = [Identifier(system=system or None, value=value)]
    input_ids = inputs if inputs is not None else [o.pk for o in observation.inputs.all()]
    return FhirObservation(
        id=str(observation.pk),
        identifier=identifier,
        status="final",
        code=_observation_code(observation.code),
        subject=_ref("Patient", observation.enrollment.patient_id),
        effectiveDateTime=observation.effective_at,
        issued=observation.recorded_at,
        valueQuantity=Quantity(
            value=observation.value,
            unit=observation.unit,
            system=UCUM_SYSTEM if ucum else None,
            code=ucum,
        ),
        derivedFrom=[_ref("Observation", pk) for pk in input_ids] or None,
    )


def flag_resource(flag: Flag) -> FhirFlag:
    """Flag: active until a later value clears it (then inactive, with the period's end)."""
    return FhirFlag(
        id=str(flag.pk),
        status="active" if flag.cleared_at is None else "inactive",
        code=CodeableConcept(coding=[Coding(system=FLAG_CODES, code=flag.code)], text=flag.message),
        subject=_ref("Patient", flag.enrollment.patient_id),
        period=Period(start=flag.raised_at, end=flag.cleared_at),
    )


MEDIA_TYPES = "http://terminology.hl7.org/CodeSystem/media-type"


def media_resource(photo: WoundPhoto) -> Media:
    """A wound photograph as Media: the Patient, the assessment's Observations (partOf), the lesion (extension
    urn:carepath:extension:lesion), body site, who took it and when; the content's url is the scoped, audited
    API download, never the store. Needs `photo.task.observations` prefetched (or costs a query)."""
    title = f"{photo.lesion}, {photo.taken_at.date().isoformat()}"
    return Media(
        id=str(photo.pk),
        extension=[Extension(url=EXT_LESION, valueString=photo.lesion)],
        status="completed",
        type=CodeableConcept(coding=[Coding(system=MEDIA_TYPES, code="image", display="Image")]),
        partOf=[_ref("Observation", o.pk) for o in photo.task.observations.all()] or None,
        subject=_ref("Patient", photo.enrollment.patient_id),
        createdDateTime=photo.taken_at,
        issued=photo.recorded_at,
        operator=_ref("Practitioner", photo.taken_by_id),
        bodySite=CodeableConcept(text=photo.body_site),
        height=photo.height_px,
        width=photo.width_px,
        content=Attachment(
            contentType=photo.content_type,
            url=f"/api/v1/wound-photos/{photo.pk}/image/",
            size=photo.size_bytes,
            title=title,
            creation=photo.taken_at,
        ),
        note=[Annotation(text=photo.note)] if photo.note else None,
    )
