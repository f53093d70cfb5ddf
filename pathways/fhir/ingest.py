"""Labs in: FHIR Observations, alone or in a transaction/batch Bundle, recorded through the observation service.

Each Observation is checked and resolved before anything is written (LOINC map, UCUM units, subject, effective
time, plausibility); a tracked value becomes an ObservationInput for its patient's live enrollment, an untracked
LOINC code becomes an informational "not tracked" note and is not stored (docs/fhir.md, "Labs in")."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryResponse
from fhir.resources.R4B.observation import Observation as FhirObservation
from pydantic import ValidationError

from pathways.choices import LIVE_ENROLLMENT_STATUSES, ObservationCode
from pathways.domain import units
from pathways.errors import DomainError, InvalidInput
from pathways.fhir.loinc import LOINC_SYSTEM, UCUM_SYSTEM, is_valid_loinc, loinc_map
from pathways.fhir.outcome import FhirError, Issue, error, from_validation_error, outcome_resource
from pathways.fhir.systems import MRN_SYSTEM, OBSERVATION_CODES
from pathways.models import Enrollment, Observation, Patient, User
from pathways.selectors.access import scope_patients
from pathways.services.lab_results import lab_results_record
from pathways.services.observations import ObservationInput

RECORDABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})
_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([0-9]{1,18})$")
# Service field names -> the Observation element they came from.
_SERVICE_FIELDS = {
    "value": "valueQuantity.value",
    "unit": "valueQuantity.unit",
    "code": "code",
    "effective_at": "effectiveDateTime",
    "reference_high": "referenceRange[0].high",
}


@dataclass
class Parsed:
    """One incoming Observation after checking: a value to record, or a "not tracked" note."""

    root: str  # FHIRPath of the resource: "Observation" or "Bundle.entry[2].resource"
    enrollment_id: int | None
    patient_id: int | None
    value: ObservationInput | None
    note: Issue | None = None


def validate_resource(model: Any, data: Any, root: str) -> Any:
    """Structural validation with fhir.resources; a malformed resource is a 400 naming the element."""
    if not isinstance(data, dict):
        raise error(400, "structure", f"expected a JSON object holding a {root} resource", root)
    if data.get("resourceType") != root:
        raise error(400, "structure", f"resourceType must be {root!r}", f"{root}.resourceType")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(root, exc) from exc
    except (KeyError, TypeError, ValueError) as exc:
        # fhir.resources raises KeyError for an unknown contained resourceType.
        raise error(400, "structure", f"not a valid FHIR R4 {root}: {exc}", root) from exc


def _identifier_key(resource: FhirObservation, if_none_exist: str | None, root: str, where: str) -> str | None:
    if if_none_exist:
        name, _, value = if_none_exist.partition("=")
        if name != "identifier" or "|" not in value or not value.split("|", 1)[1]:
            raise error(400, "not-supported", "only ifNoneExist=identifier=<system>|<value> is supported", where)
        return value[:255]
    for identifier in resource.identifier or []:
        if identifier.value:
            return f"{identifier.system or ''}|{identifier.value}"[:255]
    return None


def _resolve_patient(user: User, resource: FhirObservation, root: str) -> Patient:
    subject = resource.subject
    where = f"{root}.subject"
    if subject is None:
        raise error(422, "required", "subject is required: Patient/<id> or the site's MRN identifier", where)
    patients = scope_patients(user)
    if subject.reference:
        match = _PATIENT_REFERENCE.search(subject.reference)
        if not match:
            raise error(422, "invalid", "subject.reference must be Patient/<id>", f"{where}.reference")
        found = patients.filter(pk=int(match.group(1))).first()
    elif subject.identifier and subject.identifier.value:
        system = MRN_SYSTEM.match(subject.identifier.system or "")
        if not system:
            raise error(
                422, "invalid", "subject.identifier.system must be urn:carepath:site:<site>:mrn", f"{where}.identifier"
            )
        found = patients.filter(site__code=system.group(1), mrn=subject.identifier.value).first()
    else:
        raise error(422, "required", "subject needs a reference or an identifier", where)
    if found is None:
        raise error(404, "not-found", "no such patient", where)
    return found


def _live_enrollment(patient: Patient, root: str) -> Enrollment:
    enrollments = list(Enrollment.objects.filter(patient=patient, status__in=LIVE_ENROLLMENT_STATUSES)[:2])
    if len(enrollments) != 1:
        problem = "has no live enrollment" if not enrollments else "has more than one live enrollment"
        raise error(422, "business-rule", f"the patient {problem}; results cannot be recorded", f"{root}.subject")
    return enrollments[0]


def _effective(resource: FhirObservation, root: str) -> dt.datetime:
    value = resource.effectiveDateTime or resource.effectiveInstant
    if value is None:
        raise error(422, "required", "effectiveDateTime (or effectiveInstant) is required", f"{root}.effectiveDateTime")
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise error(
            422, "invalid", "effectiveDateTime needs a time of day and a time zone", f"{root}.effectiveDateTime"
        )
    return value


def _code(resource: FhirObservation, root: str) -> tuple[str | None, Any, str]:
    """(Carepath code or None if untracked, the LOINC entry or None, a label for messages)."""
    codings = resource.code.coding or []
    loinc_codes: list[tuple[int, str]] = []
    for i, coding in enumerate(codings):
        if coding.system == LOINC_SYSTEM and coding.code:
            loinc_codes.append((i, coding.code))
        elif coding.system == OBSERVATION_CODES and coding.code:
            if coding.code not in ObservationCode.values:
                raise error(422, "code-invalid", f"{coding.code!r} is not a Carepath code", f"{root}.code.coding[{i}]")
            return coding.code, None, coding.code
    for i, code in loinc_codes:
        if not is_valid_loinc(code):
            raise error(422, "code-invalid", f"{code!r} is not a valid LOINC code", f"{root}.code.coding[{i}].code")
        entry = loinc_map().get(code)
        if entry is not None:
            return entry.carepath, entry, f"LOINC {code}"
    if loinc_codes:
        return None, None, f"LOINC {loinc_codes[0][1]}"
    raise error(
        422, "code-unknown", "code needs a LOINC coding (system http://loinc.org) or a Carepath code", f"{root}.code"
    )


def _value_and_unit(resource: FhirObservation, code: str, entry: Any, root: str) -> tuple[Decimal, str]:
    if resource.valueInteger is not None:
        return Decimal(resource.valueInteger), ""
    quantity = resource.valueQuantity
    if quantity is None or quantity.value is None:
        raise error(422, "required", "valueQuantity.value is required", f"{root}.valueQuantity")
    if quantity.comparator:
        raise error(422, "business-rule", "a value with a comparator cannot be recorded", f"{root}.valueQuantity")
    candidates = []
    if quantity.code and quantity.system in (None, UCUM_SYSTEM):
        candidates.append(quantity.code)
    candidates.append(quantity.unit or "")
    if entry is None:
        # The Carepath code system: units as pathways/domain/units.py spells them.
        for candidate in candidates:
            try:
                return quantity.value, units.resolve_unit(code, candidate)
            except InvalidInput:
                continue
    else:
        for candidate in candidates:
            unit = entry.carepath_unit(candidate)
            if unit is not None:
                return quantity.value, unit
    accepted = ", ".join(repr(u) for u in (entry.units if entry else units.QUANTITIES[code].units))
    where = f"{root}.valueQuantity.code" if quantity.code else f"{root}.valueQuantity.unit"
    raise error(422, "code-invalid", f"unit {candidates[0]!r} is not valid here; accepted: {accepted}", where)


def _reference_high(resource: FhirObservation, code: str) -> Decimal | None:
    if code != ObservationCode.PTH or not resource.referenceRange:
        return None
    high = resource.referenceRange[0].high
    return high.value if high is not None else None


def observation_parse(
    *,
    user: User,
    resource: FhirObservation,
    root: str,
    if_none_exist: str | None = None,
    where: str = "",
    resolved: dict[Any, Any] | None = None,
) -> Parsed:
    """Check one Observation and resolve its patient and enrollment; raises FhirError (nothing is written).

    `resolved` (optional, shared by the entries of one Bundle) remembers the patients and live enrollments
    found so far, so a panel for one patient looks them up once, not once per entry."""
    code, entry, label = _code(resource, root)
    if code is None:
        note = Issue(
            "informational",
            f"not tracked: {label} is not an analyte this pathway tracks; acknowledged, not stored",
            [f"{root}.code"],
            severity="information",
        )
        return Parsed(root, None, None, None, note)
    if resource.status not in RECORDABLE_STATUSES:
        raise error(422, "business-rule", f"status {resource.status!r} cannot be recorded", f"{root}.status")
    resolved = {} if resolved is None else resolved
    subject = resource.subject.model_dump_json() if resource.subject is not None else ""
    patient = resolved.get(("patient", subject)) or _resolve_patient(user, resource, root)
    resolved[("patient", subject)] = patient
    effective_at = _effective(resource, root)
    value, unit = _value_and_unit(resource, code, entry, root)
    try:
        units.normalize(code, value, unit)
    except InvalidInput as exc:
        raise error(422, "value", exc.message, f"{root}.valueQuantity.value") from exc
    enrollment = resolved.get(("enrollment", patient.pk)) or _live_enrollment(patient, root)
    resolved[("enrollment", patient.pk)] = enrollment
    source = _identifier_key(resource, if_none_exist, root, where or f"{root}.identifier")
    reference_high = _reference_high(resource, code)
    value_input = ObservationInput(code, value, unit, effective_at, reference_high, source)
    return Parsed(root, enrollment.pk, patient.pk, value_input)


def domain_error(exc: DomainError, roots: Sequence[str]) -> FhirError:
    """A service error as a FhirError at the element it names (values[i].x -> the i-th resource's element)."""
    status = 422 if exc.http_status == 400 else exc.http_status
    code = {403: "forbidden", 404: "not-found", 409: "conflict"}.get(exc.http_status, "business-rule")
    expressions = []
    for name in exc.fields or {}:
        index, field = 0, name
        match = re.match(r"^values\[(\d+)\]\.(.+)$", name)
        if match:
            index, field = int(match.group(1)), match.group(2)
        root = roots[index] if index < len(roots) else roots[0]
        expressions.append(f"{root}.{_SERVICE_FIELDS.get(field, field)}")
    return FhirError(status, [Issue(code, exc.message, expressions or list(roots[:1]))])


@dataclass
class Recorded:
    """What happened to one incoming Observation."""

    parsed: Parsed
    observation: Observation | None = None
    created: bool = False


def record_group(*, user: User, items: Sequence[Parsed]) -> list[Recorded]:
    """Record the tracked values of `items` (one call per enrollment, so a panel derives and fires once)."""
    by_enrollment: dict[int, list[Parsed]] = defaultdict(list)
    for item in items:
        if item.value is not None and item.enrollment_id is not None:
            by_enrollment[item.enrollment_id].append(item)
    done: dict[int, Recorded] = {id(item): Recorded(item) for item in items}
    # Enrollment order is lock order: two Bundles naming the same patients cannot deadlock.
    for enrollment_id in sorted(by_enrollment):
        group = by_enrollment[enrollment_id]
        try:
            outcome = lab_results_record(
                enrollment_id=enrollment_id, values=[p.value for p in group if p.value is not None], actor=user
            )
        except DomainError as exc:
            raise domain_error(exc, [p.root for p in group]) from exc
        for item, row, created in zip(group, outcome.observations, outcome.created, strict=True):
            done[id(item)].observation, done[id(item)].created = row, created
    return [done[id(item)] for item in items]


def _entry_response(recorded: Recorded) -> BundleEntryResponse:
    if recorded.observation is None:
        note = recorded.parsed.note
        return BundleEntryResponse(status="200 OK", outcome=outcome_resource([note] if note else []))
    status = "201 Created" if recorded.created else "200 OK"
    return BundleEntryResponse(status=status, location=f"Observation/{recorded.observation.pk}")


def _error_response(exc: FhirError) -> BundleEntryResponse:
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}.get(exc.status, "")
    return BundleEntryResponse(
        status=f"{exc.status} {reason or 'Unprocessable Entity'}", outcome=outcome_resource(exc.issues)
    )


def _entry_parse(user: User, entry: BundleEntry, index: int, resolved: dict[Any, Any]) -> Parsed:
    root = f"Bundle.entry[{index}].resource"
    request = entry.request
    url = (request.url or "") if request is not None else ""
    if request is None or request.method != "POST" or url.split("?")[0].rstrip("/") != "Observation":
        raise error(
            422, "not-supported", "only POST Observation entries are supported", f"Bundle.entry[{index}].request"
        )
    if not isinstance(entry.resource, FhirObservation):
        raise error(422, "not-supported", "the entry must hold an Observation", root)
    return observation_parse(
        user=user,
        resource=entry.resource,
        root=root,
        if_none_exist=request.ifNoneExist,
        where=f"Bundle.entry[{index}].request.ifNoneExist",
        resolved=resolved,
    )


def bundle_ingest(*, user: User, bundle: Bundle) -> tuple[Bundle, list[Recorded]]:
    """Process a transaction (all or nothing: the first problem is the answer, nothing stored) or a batch
    (each entry on its own; its response entry carries its status and OperationOutcome). Returns the
    transaction-response/batch-response Bundle and what each entry did (for the audit trail)."""
    entries = bundle.entry or []
    resolved: dict[Any, Any] = {}
    if bundle.type == "transaction":
        with transaction.atomic():
            parsed = [_entry_parse(user, entry, i, resolved) for i, entry in enumerate(entries)]
            recorded = record_group(user=user, items=parsed)
        response = Bundle(
            type="transaction-response", entry=[BundleEntry(response=_entry_response(r)) for r in recorded]
        )
        return response, recorded
    if bundle.type != "batch":
        raise error(422, "not-supported", "Bundle.type must be transaction or batch", "Bundle.type")
    responses: list[BundleEntry] = []
    all_recorded: list[Recorded] = []
    for i, entry in enumerate(entries):
        try:
            with transaction.atomic():
                item = _entry_parse(user, entry, i, resolved)
                [one] = record_group(user=user, items=[item])
        except FhirError as exc:
            responses.append(BundleEntry(response=_error_response(exc)))
            continue
        all_recorded.append(one)
        responses.append(BundleEntry(response=_entry_response(one)))
    return Bundle(type="batch-response", entry=responses), all_recorded
