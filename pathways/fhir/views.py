"""The FHIR REST endpoints: thin views over pathways.fhir.search (reads) and pathways.fhir.ingest (labs in).

Authentication and the active-staff check are the REST API's; every answer is application/fhir+json and
every error an OperationOutcome. The audit middleware records each request (pathways/middleware.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.http import Http404
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch, BundleLink
from fhir.resources.R4B.observation import Observation as FhirObservation
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pathways.api.permissions import IsActiveStaff
from pathways.domain.units import is_plain_id
from pathways.errors import DomainError
from pathways.fhir import ingest
from pathways.fhir.capability import capability_statement, task_due_search_parameter
from pathways.fhir.outcome import FhirError, Issue, error, outcome_resource
from pathways.fhir.resources import as_json
from pathways.fhir.search import KINDS, ResourceKind, kind_check, search_apply
from pathways.fhir.systems import FHIR_CONTENT_TYPE, TASK_DUE_SEARCH_PARAMETER_ID
from pathways.middleware import audit_note
from pathways.models import User
from pathways.selectors.access import scope_patients
from pathways.services.enrollment import enrollment_apply


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_CONTENT_TYPE
    format = "json"


class FhirJSONParser(JSONParser):
    media_type = FHIR_CONTENT_TYPE


class AlwaysFhirJSON(DefaultContentNegotiation):
    """Every answer is application/fhir+json, whatever Accept says (FHIR clients send several spellings)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return next(iter(renderers)), FHIR_CONTENT_TYPE


def _fhir_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as an OperationOutcome with its HTTP status; anything unexpected stays a 500 (a bug)."""
    headers: dict[str, str] = {}
    if isinstance(exc, FhirError):
        status, issues = exc.status, exc.issues
    elif isinstance(exc, DomainError):
        fhir_error = ingest.domain_error(exc, ["Observation"])
        status, issues = fhir_error.status, fhir_error.issues
    else:
        if isinstance(exc, Http404):
            exc = exceptions.NotFound()
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied()
        if not isinstance(exc, exceptions.APIException):
            return None
        status = exc.status_code
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status = 401
            headers["WWW-Authenticate"] = 'Token realm="fhir"'
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait))
        code = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 415: "not-supported"}
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        issues = [Issue(code.get(status, "invalid" if status == 400 else "exception"), str(detail))]
    response = Response(as_json(outcome_resource(issues)), status=status, headers=headers)
    return response


class FhirView(APIView):
    """Base of every /fhir/R4/ view."""

    # Not part of the REST API's OpenAPI schema: the CapabilityStatement describes this interface.
    schema = None
    permission_classes = [IsActiveStaff]
    # API token scopes are named by the resource type in the URL (pathways.api.permissions.required_scope).
    fhir_interface = True
    renderer_classes = [FhirJSONRenderer]
    parser_classes = [FhirJSONParser, JSONParser]
    content_negotiation_class = AlwaysFhirJSON

    def get_exception_handler(self) -> Any:
        return _fhir_exception_handler

    def user(self) -> User:
        user = self.request.user
        if not isinstance(user, User):
            raise exceptions.NotAuthenticated()
        return user

    def base_url(self) -> str:
        return self.request.build_absolute_uri("/fhir/R4/")


def _kind(resource_type: str) -> ResourceKind:
    kind = KINDS.get(resource_type)
    if kind is None:
        raise error(404, "not-supported", f"resource type {resource_type!r} is not served here")
    return kind


class MetadataView(FhirView):
    """GET metadata: the CapabilityStatement (public, as FHIR servers make it)."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        audit_note(request, entity_type="capabilitystatement", subtype="fhir metadata")
        return Response(as_json(capability_statement(self.base_url())))


class SystemView(FhirView):
    """POST to the base: a transaction or batch Bundle of lab Observations."""

    def post(self, request: Request) -> Response:
        bundle = ingest.validate_resource(Bundle, request.data, "Bundle")
        response, recorded = ingest.bundle_ingest(user=self.user(), bundle=bundle)
        stored = [r for r in recorded if r.observation is not None]
        created = any(r.created for r in stored)
        patients = {r.parsed.patient_id for r in stored if r.parsed.patient_id is not None}
        audit_note(
            request,
            entity_type="observation",
            entity_ids=[str(r.observation.pk) for r in stored if r.observation is not None],
            patient_id=next(iter(patients)) if len(patients) == 1 else None,
            subtype=f"fhir {bundle.type}",
            action="C" if created else "E",
        )
        return Response(as_json(response), status=200)


class TypeView(FhirView):
    """GET <Type>?params: a searchset Bundle; POST Observation: record one lab result."""

    def get(self, request: Request, resource_type: str) -> Response:
        kind = _kind(resource_type)
        params = {key: request.query_params.getlist(key) for key in request.query_params}
        qs, count, offset = search_apply(kind, self.user(), params)
        rows = list(qs[offset : offset + count + 1])
        more, rows = len(rows) > count, rows[:count]
        base = self.base_url() + resource_type

        def link(relation: str, at: int) -> BundleLink:
            query = [(k, v) for k, values in params.items() if k not in ("_count", "_offset") for v in values]
            query += [("_count", str(count)), ("_offset", str(at))]
            return BundleLink(relation=relation, url=f"{base}?{urlencode(query)}")

        links = [link("self", offset)]
        if more:
            links.append(link("next", offset + count))
        if offset:
            links.append(link("previous", max(0, offset - count)))
        bundle = Bundle(
            type="searchset",
            link=links,
            entry=[
                BundleEntry(
                    fullUrl=f"{base}/{row.pk}", resource=kind.build(row), search=BundleEntrySearch(mode="match")
                )
                for row in rows
            ]
            or None,
        )
        patients = {kind.patient_of(row) for row in rows}
        audit_note(
            request,
            entity_type=kind.audit_entity,
            entity_ids=[str(row.pk) for row in rows],
            patient_id=next(iter(patients)) if len(patients) == 1 else None,
            subtype=f"fhir {resource_type} search",
        )
        return Response(as_json(bundle))

    def post(self, request: Request, resource_type: str) -> Response:
        if resource_type != "Observation":
            raise exceptions.MethodNotAllowed("POST", detail=f"{resource_type} cannot be created here")
        resource = ingest.validate_resource(FhirObservation, request.data, "Observation")
        with transaction.atomic():
            parsed = ingest.observation_parse(
                user=self.user(),
                resource=resource,
                root="Observation",
                if_none_exist=request.headers.get("If-None-Exist"),
                where="If-None-Exist",
            )
            if parsed.value is None:
                audit_note(request, entity_type="observation", subtype="fhir Observation not tracked")
                return Response(as_json(outcome_resource([parsed.note] if parsed.note else [])), status=200)
            [recorded] = ingest.record_group(user=self.user(), items=[parsed])
        observation = recorded.observation
        assert observation is not None
        audit_note(
            request,
            entity_type="observation",
            entity_id=str(observation.pk),
            patient_id=parsed.patient_id,
            subtype="fhir Observation create",
            action="C" if recorded.created else "E",
        )
        body = as_json(KINDS["Observation"].build(observation))
        status = 201 if recorded.created else 200
        return Response(body, status=status, headers={"Location": f"{self.base_url()}Observation/{observation.pk}"})


class InstanceView(FhirView):
    """GET <Type>/<id>: one resource; out of scope or absent is a 404."""

    def get(self, request: Request, resource_type: str, pk: str) -> Response:
        if resource_type == "SearchParameter":
            if pk != TASK_DUE_SEARCH_PARAMETER_ID:
                raise error(404, "not-found", f"SearchParameter/{pk} not found")
            return Response(as_json(task_due_search_parameter()))
        kind = _kind(resource_type)
        kind_check(kind, self.user())
        row = kind.queryset(self.user()).filter(pk=int(pk)).first() if is_plain_id(pk, 17) else None
        if row is None:
            raise error(404, "not-found", f"{resource_type}/{pk} not found")
        audit_note(
            request,
            entity_type=kind.audit_entity,
            entity_id=str(row.pk),
            patient_id=kind.patient_of(row),
            subtype=f"fhir {resource_type} read",
        )
        return Response(as_json(kind.build(row)))


class ApplyView(FhirView):
    """POST PlanDefinition/<id>/$apply?subject=Patient/<id>: enrol the patient through the enrollment service
    (the active version only) and answer the CarePlan, 201 with its Location."""

    token_resource = "enrollments"  # noqa: S105 - a scope name, not a secret

    def post(self, request: Request, pk: str) -> Response:
        user = self.user()
        unknown = sorted(set(request.query_params) - {"subject", "_format"})
        if unknown:
            raise error(400, "not-supported", f"unknown parameter(s): {', '.join(unknown)}", *unknown)
        plan = KINDS["PlanDefinition"].queryset(user).filter(pk=int(pk)).first() if is_plain_id(pk, 17) else None
        if plan is None:
            raise error(404, "not-found", f"PlanDefinition/{pk} not found")
        if plan.status != "active":
            raise error(422, "business-rule", f"PlanDefinition/{pk} is {plan.status}; only the active version applies")
        subject = request.query_params.get("subject", "")
        match = re.fullmatch(r"Patient/([0-9]{1,18})", subject)
        if not match:
            raise error(400, "required", "subject=Patient/<id> is required", "subject")
        patient = scope_patients(user).filter(pk=int(match.group(1))).first()
        if patient is None:
            raise error(404, "not-found", f"{subject} not found", "subject")
        try:
            enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug=plan.slug, actor=user)
        except DomainError as exc:
            status = 422 if exc.http_status == 400 else exc.http_status
            code = {403: "forbidden", 404: "not-found", 409: "conflict"}.get(exc.http_status, "business-rule")
            raise FhirError(status, [Issue(code, exc.message, ["subject"])]) from exc
        audit_note(
            request,
            entity_type="enrollment",
            entity_id=str(enrollment.pk),
            patient_id=patient.pk,
            subtype="fhir PlanDefinition $apply",
            action="C",
        )
        body = as_json(KINDS["CarePlan"].build(enrollment))
        return Response(body, status=201, headers={"Location": f"{self.base_url()}CarePlan/{enrollment.pk}"})
