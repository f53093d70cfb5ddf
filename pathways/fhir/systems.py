"""The URIs Carepath uses in FHIR: identifier systems, its own code systems, canonical URLs, extensions.

They are URNs: stable names that never depend on where a server is deployed (docs/fhir.md lists them)."""

from __future__ import annotations

import re

FHIR_CONTENT_TYPE = "application/fhir+json"


def mrn_system(site_code: str) -> str:
    """A site's MRN identifier system: Patient.identifier and Observation.subject.identifier use it."""
    return f"urn:carepath:site:{site_code}:mrn"


MRN_SYSTEM = re.compile(r"^urn:carepath:site:([A-Za-z0-9_-]+):mrn$")

OBSERVATION_CODES = "urn:carepath:codesystem:observation"
ROLE_CODES = "urn:carepath:codesystem:role"
TASK_TEMPLATE_CODES = "urn:carepath:codesystem:task-template"
TASK_BUSINESS_STATUS = "urn:carepath:codesystem:task-business-status"
# Task.statusReason: why a task ended as it did ("missed": session-bound work whose window ended undone).
TASK_STATUS_REASON = "urn:carepath:codesystem:task-status-reason"
FLAG_CODES = "urn:carepath:codesystem:flag"
PRONG_CODES = "urn:carepath:codesystem:prong"


def plan_definition_url(slug: str) -> str:
    """PlanDefinition.url of a pathway; CarePlan.instantiatesCanonical adds `|<version>`."""
    return f"urn:carepath:plandefinition:{slug}"


TASK_DUE_SEARCH_PARAMETER_ID = "task-due"
TASK_DUE_SEARCH_PARAMETER_URL = "urn:carepath:searchparameter:task-due"

# PlanDefinition.action extensions for what Timing cannot say (docs/fhir.md, "PlanDefinition").
EXT_DIALYSIS_DAYS = "urn:carepath:extension:dialysis-days"
EXT_AFTER_COMPLETION = "urn:carepath:extension:after-completion"
EXT_ON_TRIGGER = "urn:carepath:extension:on-trigger"
EXT_FIRST_DUE = "urn:carepath:extension:first-due"
EXT_DUE_WITHIN = "urn:carepath:extension:due-within"
EXT_EXPIRES_AFTER = "urn:carepath:extension:expires-after"
# Media: the lesion's stable label ("L1 left thigh"), so a client can line up a lesion's photographs.
EXT_LESION = "urn:carepath:extension:lesion"
APPLIES_IF_LANGUAGE = "application/json"
AUDIT_SUBTYPES = "urn:carepath:codesystem:audit-subtype"
