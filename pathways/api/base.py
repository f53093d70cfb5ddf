"""Building blocks every Carepath viewset uses: strict input (unknown fields and query parameters are
rejected, never ignored), bounded pagination, and a viewset base whose queryset comes from a scoped selector.

The clinical endpoints (pathways/api/clinical.py) reuse these."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.core.exceptions import SuspiciousOperation
from django.http import UnreadablePostError
from rest_framework import serializers, viewsets
from rest_framework.exceptions import APIException, NotAuthenticated, NotFound, UnsupportedMediaType, ValidationError
from rest_framework.request import Request

from pathways.api.fields import strict_id
from pathways.api.pagination import MAX_PAGE_SIZE, BoundedLimitOffsetPagination
from pathways.domain.units import is_plain_id
from pathways.errors import InvalidInput
from pathways.middleware import audit_note
from pathways.models import Patient, User
from pathways.services.audit import patient_id_of, patient_id_of_enrollment


def staff(request: Request) -> User:
    """The authenticated member of staff (IsActiveStaff has already turned anonymous requests away)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


class StrictSerializer(serializers.Serializer):
    """An input serializer whose writable fields are an explicit allow-list: any other key is a 400.

    Silently ignoring `status`, `version` or `assignee` in a body would let a client believe it changed them.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise ValidationError({name: ["unknown or read-only field"] for name in unknown})
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer):
    """ModelSerializer with the same unknown-field check as StrictSerializer."""

    def to_internal_value(self, data: Any) -> Any:
        return StrictSerializer.to_internal_value(self, data)  # type: ignore[arg-type]


PAGINATION_PARAMS = frozenset({"limit", "offset", "count"})
# DRF's renderer switch (?format=json / ?format=api), used by the browsable API's own links.
ALWAYS_ALLOWED_PARAMS = frozenset({"format"})


class StrictQueryParamsMixin:
    """Reject query parameters a view does not understand (a typo such as `?assigne=me` must not return
    everything). Allowed: the filterset's fields, pagination on lists, and `query_params_allowed[action]`."""

    query_params_allowed: ClassVar[dict[str, Iterable[str]]] = {}

    def allowed_query_params(self) -> set[str]:
        action = getattr(self, "action", None)
        allowed = set(self.query_params_allowed.get(action or "", ())) | ALWAYS_ALLOWED_PARAMS
        if action == "list":
            allowed |= PAGINATION_PARAMS
            filterset_class = getattr(self, "filterset_class", None)
            if filterset_class is not None:
                allowed |= set(filterset_class.base_filters)
        return allowed

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        unknown = sorted(set(request.query_params) - self.allowed_query_params())
        if unknown:
            raise ValidationError({name: ["unknown query parameter"] for name in unknown})


class AuditDetailsMixin:
    """Tells the audit middleware (pathways.middleware) what a viewset request touched: the object fetched by
    get_object and its patient, the ids on a list page, the id of a created record. The middleware writes the
    AuditEvent in the request's transaction; no view writes audit rows itself."""

    def get_object(self) -> Any:
        lookup = str(getattr(self, "lookup_url_kwarg", None) or getattr(self, "lookup_field", "pk"))
        try:
            # The one integer reader: Django would look up "\u0661\u0660" as pk 10, and "\x00" reach the query.
            strict_id(self.kwargs.get(lookup), field_name=lookup)  # type: ignore[attr-defined]
        except InvalidInput:
            raise NotFound() from None
        obj = self.find_object()
        audit_note(
            self.request,  # type: ignore[attr-defined]
            entity_type=type(obj)._meta.model_name,
            entity_id=str(obj.pk),
            patient_id=patient_id_of(obj),
        )
        return obj

    def find_object(self) -> Any:
        """The object of a detail or action request, its id already checked: DRF's lookup in the scoped
        queryset (404 when absent), with the object permissions checked."""
        return super().get_object()  # type: ignore[misc]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        data = getattr(response, "data", None)
        rows = data.get("results") if isinstance(data, dict) else data
        ids = [row["id"] for row in rows if isinstance(row, dict) and "id" in row] if isinstance(rows, list) else []
        model = getattr(getattr(self, "queryset", None), "model", None)
        note = audit_note(request)
        # What the view itself noted wins; otherwise the viewset's model and the ids it answered with.
        if not note.entity_type and model is not None:
            note.entity_type = model._meta.model_name
        if not note.entity_ids:
            note.entity_ids = ids
        if not note.entity_id and response.status_code == 201 and isinstance(data, dict) and "id" in data:
            note.entity_id = str(data["id"])
        if note.patient_id is None:
            note.patient_id = self._patient_hint(request, data if response.status_code == 201 else None)
        return response

    def _patient_hint(self, request: Request, created: Any) -> int | None:
        """A single-patient search (?patient= / ?enrollment=) or a write naming its enrollment or patient."""
        sources: list[Any] = [request.query_params]
        body = _body_if_readable(request)
        if isinstance(body, dict):
            sources.append(body)
        if isinstance(created, dict):
            sources.append(created)
        for source in sources:
            patient = source.get("patient")
            if patient is not None and is_plain_id(str(patient)) and Patient.objects.filter(pk=int(patient)).exists():
                return int(patient)
            enrollment = source.get("enrollment")
            if enrollment is not None:
                found = patient_id_of_enrollment(enrollment)
                if found is not None:
                    return found
        if isinstance(created, dict) and getattr(self, "basename", "") == "patient" and "id" in created:
            return int(created["id"])
        return None


def _body_if_readable(request: Request) -> Any:
    """request.data, or None when the body cannot be parsed: the audit hint must never turn a 401, 404 or 415
    into a 500 by reading a body the view itself never read (issue 12)."""
    try:
        return request.data
    except (APIException, SuspiciousOperation, UnreadablePostError):
        return None


def validated_body(serializer_class: type[serializers.BaseSerializer], request: Request) -> dict[str, Any]:
    """The request body checked by `serializer_class`; no body at all where the serializer has required fields
    is a 415 (send JSON), anything else invalid a 400 naming the fields."""
    serializer = serializer_class(data=request.data, context={"request": request})
    fields = getattr(serializer, "fields", {})
    if request.stream is None and any(field.required for field in fields.values()):
        raise UnsupportedMediaType("", detail="send a JSON body with Content-Type: application/json")
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ScopedReadOnlyViewSet(AuditDetailsMixin, StrictQueryParamsMixin, viewsets.ReadOnlyModelViewSet):
    """List + retrieve from a scoped queryset: objects out of the user's scope are simply absent (404)."""


class ScopedViewSet(AuditDetailsMixin, StrictQueryParamsMixin, viewsets.GenericViewSet):
    """Base for viewsets that add create or actions; mix in the list/retrieve/create mixins needed."""


__all__ = [
    "MAX_PAGE_SIZE",
    "AuditDetailsMixin",
    "BoundedLimitOffsetPagination",
    "ScopedReadOnlyViewSet",
    "ScopedViewSet",
    "StrictModelSerializer",
    "StrictQueryParamsMixin",
    "StrictSerializer",
    "staff",
    "validated_body",
]
