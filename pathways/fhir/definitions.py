"""PlanDefinition (a pathway version), CareTeam (an enrollment's team) and AuditEvent, as fhir.resources R4B
models. Recurrence becomes Timing.repeat where FHIR can say it; the rest are documented extensions."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.auditevent import (
    AuditEventAgent,
    AuditEventAgentNetwork,
    AuditEventEntity,
    AuditEventSource,
)
from fhir.resources.R4B.careteam import CareTeam, CareTeamParticipant
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.duration import Duration
from fhir.resources.R4B.expression import Expression
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.plandefinition import (
    PlanDefinition,
    PlanDefinitionAction,
    PlanDefinitionActionCondition,
    PlanDefinitionActionParticipant,
    PlanDefinitionActionRelatedAction,
)
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.relatedartifact import RelatedArtifact
from fhir.resources.R4B.timing import Timing, TimingRepeat

from pathways.choices import LIVE_ENROLLMENT_STATUSES, WEEKDAY_CODES, RecurrenceKind
from pathways.fhir.resources import role_concept
from pathways.fhir.systems import (
    APPLIES_IF_LANGUAGE,
    AUDIT_SUBTYPES,
    EXT_AFTER_COMPLETION,
    EXT_DIALYSIS_DAYS,
    EXT_DUE_WITHIN,
    EXT_EXPIRES_AFTER,
    EXT_FIRST_DUE,
    EXT_ON_TRIGGER,
    TASK_TEMPLATE_CODES,
    plan_definition_url,
)
from pathways.models import AuditEvent, Enrollment, PathwayTemplate, TaskTemplate

FHIR_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Carepath audit entity types -> the FHIR resource type that serves them.
AUDIT_ENTITY_TYPES = {
    "task": "Task",
    "enrollment": "CarePlan",
    "patient": "Patient",
    "observation": "Observation",
    "flag": "Flag",
    "pathwaytemplate": "PlanDefinition",
}


def _days(value: int) -> Duration:
    return Duration(value=Decimal(value), unit="d", system="http://unitsofmeasure.org", code="d")


def _hours(value: int) -> Duration:
    return Duration(value=Decimal(value), unit="h", system="http://unitsofmeasure.org", code="h")


def _time_of_day(at: str | None) -> list[str] | None:
    return [f"{at}:00"] if at else None


def action_timing(template: TaskTemplate) -> tuple[Timing | None, list[Extension]]:
    """Timing.repeat for interval, weekday and one-off recurrence; extensions for dialysis days,
    after-completion and rule-only templates; bounds as repeat.count and repeat.boundsDuration (days)."""
    params: dict[str, Any] = template.recurrence or {}
    kind = template.recurrence_kind
    extensions: list[Extension] = []
    repeat: dict[str, Any] = {}
    if kind == RecurrenceKind.ONCE:
        repeat["count"] = 1
    elif kind == RecurrenceKind.INTERVAL:
        if params.get("every_hours"):
            repeat |= {"frequency": 1, "period": params["every_hours"], "periodUnit": "h"}
        else:
            repeat |= {"frequency": 1, "period": params.get("every_days", 1), "periodUnit": "d"}
    elif kind == RecurrenceKind.WEEKDAYS:
        # Stored as weekday numbers (Monday = 0); content files spell them MO..SU.
        days = [FHIR_DAYS[d if isinstance(d, int) else WEEKDAY_CODES[d]] for d in params.get("weekdays", [])]
        repeat |= {"dayOfWeek": days, "timeOfDay": _time_of_day(params.get("at", "09:00"))}
    elif kind == RecurrenceKind.DIALYSIS_DAYS:
        extensions.append(Extension(url=EXT_DIALYSIS_DAYS, valueBoolean=True))
        repeat["timeOfDay"] = _time_of_day(params.get("at"))
    elif kind == RecurrenceKind.AFTER_COMPLETION:
        extensions.append(Extension(url=EXT_AFTER_COMPLETION, valueDuration=_hours(int(params.get("hours", 24)))))
    else:
        extensions.append(Extension(url=EXT_ON_TRIGGER, valueBoolean=True))
        return None, extensions
    if params.get("count"):
        repeat["count"] = params["count"]
    if params.get("until_day") is not None:
        repeat["boundsDuration"] = _days(int(params["until_day"]))
    repeat = {k: v for k, v in repeat.items() if v is not None}
    return Timing(repeat=TimingRepeat(**repeat) if repeat else None, extension=extensions or None), []


def plan_action(template: TaskTemplate) -> PlanDefinitionAction:
    """One task template: timing, participant role, applicability condition, prerequisites, citation."""
    timing, action_extensions = action_timing(template)
    extensions = [
        *action_extensions,
        Extension(url=EXT_FIRST_DUE, valueDuration=_days(int((template.first_due or {}).get("day", 0)))),
        Extension(url=EXT_DUE_WITHIN, valueDuration=_hours(template.due_within_hours)),
    ]
    if template.expires_after_hours:
        # Session-bound work: undone this long after its start, an occurrence closes as missed.
        extensions.append(Extension(url=EXT_EXPIRES_AFTER, valueDuration=_hours(template.expires_after_hours)))
    condition = None
    if template.applies_if:
        condition = [
            PlanDefinitionActionCondition(
                kind="applicability",
                expression=Expression(
                    language=APPLIES_IF_LANGUAGE,
                    expression=json.dumps(template.applies_if, sort_keys=True),
                    description="Carepath applies_if: every key given must hold for the patient at enrollment",
                ),
            )
        ]
    return PlanDefinitionAction(
        id=template.code,
        title=template.title,
        description=template.instructions or None,
        priority=template.priority,
        code=[CodeableConcept(coding=[Coding(system=TASK_TEMPLATE_CODES, code=template.code)])],
        participant=[PlanDefinitionActionParticipant(type="practitioner", role=role_concept(template.role))],
        timingTiming=timing,
        condition=condition,
        relatedAction=[
            PlanDefinitionActionRelatedAction(actionId=code, relationship="after-end")
            for code in template.prerequisites or []
        ]
        or None,
        documentation=[RelatedArtifact(type="citation", citation=template.citation)] if template.citation else None,
        extension=extensions,
    )


def plan_definition_resource(pathway: PathwayTemplate) -> PlanDefinition:
    """PlanDefinition: one pathway version (url + version), its status, citations and one action per template."""
    return PlanDefinition(
        id=str(pathway.pk),
        url=plan_definition_url(pathway.slug),
        version=str(pathway.version),
        name="".join(part.capitalize() for part in pathway.slug.replace("_", "-").split("-")) or None,
        title=pathway.title,
        status=pathway.status,
        description=pathway.description or None,
        relatedArtifact=[RelatedArtifact(type="citation", citation=str(c)) for c in pathway.citations or []] or None,
        action=[plan_action(t) for t in pathway.task_templates.all()] or None,
    )


def care_team_resource(enrollment: Enrollment) -> CareTeam:
    """CareTeam of an enrollment (same id as its CarePlan): members with role and period, current and past."""
    return CareTeam(
        id=str(enrollment.pk),
        status="active" if enrollment.status in LIVE_ENROLLMENT_STATUSES else "inactive",
        subject=Reference(reference=f"Patient/{enrollment.patient_id}"),
        period=Period(start=enrollment.enrolled_at, end=enrollment.ended_at),
        participant=[
            CareTeamParticipant(
                role=[role_concept(member.role)],
                member=Reference(reference=f"Practitioner/{member.user_id}", display=member.user.get_username()),
                period=Period(start=member.period_start, end=member.period_end),
            )
            for member in enrollment.care_team.all()
        ]
        or None,
    )


def audit_event_resource(event: AuditEvent) -> FhirAuditEvent:
    """AuditEvent: who (agent), what (entity, patient), when (recorded), outcome, from where (network)."""
    entities = []
    if event.entity_type:
        kind = AUDIT_ENTITY_TYPES.get(event.entity_type)
        what = (
            Reference(reference=f"{kind}/{event.entity_id}")
            if kind and event.entity_id
            else Reference(display=f"{event.entity_type} {event.entity_id}".strip())
        )
        entities.append(AuditEventEntity(what=what))
    if event.patient_id:
        entities.append(AuditEventEntity(what=Reference(reference=f"Patient/{event.patient_id}")))
    agent_who = (
        Reference(reference=f"Practitioner/{event.actor_id}", display=event.actor_username or None)
        if event.actor_id
        else Reference(display=event.actor_username or "anonymous")
    )
    return FhirAuditEvent(
        id=str(event.pk),
        type=Coding(system="http://terminology.hl7.org/CodeSystem/audit-event-type", code="rest"),
        subtype=[Coding(system=AUDIT_SUBTYPES, code=event.subtype)] if event.subtype else None,
        action=event.action,
        recorded=event.recorded_at,
        outcome=event.outcome,
        outcomeDesc=event.outcome_desc or None,
        agent=[
            AuditEventAgent(
                who=agent_who,
                requestor=True,
                network=AuditEventAgentNetwork(address=event.source_address, type="2")
                if event.source_address
                else None,
            )
        ],
        source=AuditEventSource(observer=Reference(display="Carepath")),
        entity=entities or None,
    )
