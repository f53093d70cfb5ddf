"""The CapabilityStatement (exactly what /fhir/R4/ supports) and the SearchParameter it publishes."""

from __future__ import annotations

import datetime as dt

from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatement,
    CapabilityStatementImplementation,
    CapabilityStatementRest,
    CapabilityStatementRestInteraction,
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction,
    CapabilityStatementRestResourceOperation,
    CapabilityStatementRestResourceSearchParam,
    CapabilityStatementRestSecurity,
    CapabilityStatementSoftware,
)
from fhir.resources.R4B.searchparameter import SearchParameter

from pathways.fhir.search import KINDS
from pathways.fhir.systems import TASK_DUE_SEARCH_PARAMETER_ID, TASK_DUE_SEARCH_PARAMETER_URL

RELEASED = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def task_due_search_parameter() -> SearchParameter:
    """`due` on Task: the due time (Task.restriction.period.end); FHIR R4 defines no such parameter."""
    return SearchParameter(
        id=TASK_DUE_SEARCH_PARAMETER_ID,
        url=TASK_DUE_SEARCH_PARAMETER_URL,
        name="TaskDue",
        status="active",
        description="Tasks by due time (the end of Task.restriction.period); prefixes eq, gt, ge, lt, le.",
        code="due",
        base=["Task"],
        type="date",
        expression="Task.restriction.period.end",
        comparator=["eq", "gt", "ge", "lt", "le"],
    )


def capability_statement(base_url: str) -> CapabilityStatement:
    """What this server does: read and search on each served type, create on Observation, transaction and
    batch on the base, and the search parameters each type understands."""
    served = []
    for kind in KINDS.values():
        interactions = [
            CapabilityStatementRestResourceInteraction(code="read"),
            CapabilityStatementRestResourceInteraction(code="search-type"),
        ]
        if kind.name == "Observation":
            interactions.append(CapabilityStatementRestResourceInteraction(code="create"))
        operations = None
        if kind.name == "PlanDefinition":
            operations = [
                CapabilityStatementRestResourceOperation(
                    name="apply",
                    definition="http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply",
                    documentation="subject=Patient/<id>: enrols the patient (active version); returns the CarePlan",
                )
            ]
        served.append(
            CapabilityStatementRestResource(
                type=kind.name,
                interaction=interactions,
                conditionalCreate=True if kind.name == "Observation" else None,
                operation=operations,
                searchParam=[
                    CapabilityStatementRestResourceSearchParam(
                        name=p.name,
                        type=p.type,
                        documentation=p.documentation,
                        definition=TASK_DUE_SEARCH_PARAMETER_URL if (kind.name, p.name) == ("Task", "due") else None,
                    )
                    for p in kind.params.values()
                ],
            )
        )
    served.append(
        CapabilityStatementRestResource(
            type="SearchParameter", interaction=[CapabilityStatementRestResourceInteraction(code="read")]
        )
    )
    return CapabilityStatement(
        status="active",
        date=RELEASED,
        kind="instance",
        software=CapabilityStatementSoftware(name="Carepath"),
        implementation=CapabilityStatementImplementation(description="Carepath FHIR R4 interface", url=base_url),
        fhirVersion="4.0.1",
        format=["application/fhir+json"],
        rest=[
            CapabilityStatementRest(
                mode="server",
                documentation="Paging: _count (1-200, default 50) and Bundle next links. Unknown parameters are a 400.",
                security=CapabilityStatementRestSecurity(
                    description="DRF token (Authorization: Token <key>) or a session, as the REST API."
                ),
                resource=served,
                interaction=[
                    CapabilityStatementRestInteraction(code="transaction"),
                    CapabilityStatementRestInteraction(code="batch"),
                ],
            )
        ],
    )
