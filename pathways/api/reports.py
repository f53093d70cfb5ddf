"""Reports: adherence metrics and the audit log (JSON, and CSV with `?format=csv`), and the staff directory.

Adherence and audit events are read through pathways.selectors (scoped by pathways.selectors.access); who may
read them is decided there too (can_view_reports, can_view_audit_log)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import django_filters
from django.db import connection
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from pathways.api.base import ScopedViewSet, staff
from pathways.api.fields import AwareDateTimeFilter
from pathways.api.filters import IdFilter
from pathways.choices import AuditAction, AuditOutcome, Role
from pathways.domain import instants
from pathways.domain.instants import DATETIME_HELP
from pathways.errors import InvalidInput, NotPermitted
from pathways.middleware import audit_note
from pathways.models import AuditEvent, Task, User
from pathways.selectors.access import can_view_audit_log, can_view_reports, scope_audit_events, scope_users
from pathways.selectors.adherence import (
    GROUP_FIELDS,
    METRIC_FIELDS,
    adherence_by,
    adherence_totals_of,
    adherence_window,
)

# The most rows one CSV export of the audit log returns; narrow the filters (time range) for more.
AUDIT_EXPORT_MAX_ROWS = 50_000


class CSVRenderer(BaseRenderer):
    """Renders `results` (a list of flat dicts) as CSV, columns in the view's `csv_columns` order.

    Cells starting with = + - @ are prefixed with a quote so a spreadsheet never runs them as formulas
    (OWASP "CSV injection")."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, dict) and "error" in data:
            return json.dumps(data).encode()
        rows = data.get("results", []) if isinstance(data, dict) else (data or [])
        view = (renderer_context or {}).get("view")
        columns = list(getattr(view, "csv_columns", None) or (rows[0].keys() if rows else []))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])
        return out.getvalue().encode()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


REPORT_RENDERERS = [JSONRenderer, CSVRenderer, BrowsableAPIRenderer]


def _when(request: Request, name: str) -> dt.datetime | None:
    """A query parameter holding a day (YYYY-MM-DD, midnight UTC) or a date-time with a UTC offset, read by
    pathways.domain.instants (bounded; a naive date-time is a 400 naming the parameter)."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        if len(raw.strip()) == len("YYYY-MM-DD"):
            day = instants.parse_date(raw, field_name=name)
            return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return instants.parse_aware_datetime(raw, field_name=name)
    except InvalidInput as exc:
        raise ValidationError(exc.fields) from None


class AdherenceRowSerializer(serializers.Serializer):
    group = serializers.CharField(help_text="The prong, role, site code, template code or enrollment id.")
    patient = serializers.IntegerField(required=False, help_text="group_by=enrollment only.")
    due = serializers.IntegerField()
    completed_on_time = serializers.IntegerField()
    completed_late = serializers.IntegerField()
    not_completed = serializers.IntegerField()
    missed = serializers.IntegerField(
        help_text="Session-bound work closed as missed (part of not_completed; counted in due)."
    )
    on_time_rate = serializers.FloatField(allow_null=True)
    cancelled = serializers.IntegerField()
    overdue_open = serializers.IntegerField()
    overdue_age_hours_avg = serializers.FloatField(allow_null=True)
    overdue_age_hours_max = serializers.FloatField(allow_null=True)
    lateness_hours_median = serializers.FloatField(allow_null=True)
    lateness_hours_p90 = serializers.FloatField(allow_null=True)
    escalated = serializers.IntegerField()
    sts_doses_scheduled = serializers.IntegerField()
    sts_doses_given = serializers.IntegerField()
    sts_doses_missed = serializers.IntegerField(help_text="Sodium thiosulfate doses whose session ended undone.")
    lab_rechecks_due = serializers.IntegerField()
    lab_rechecks_on_time = serializers.IntegerField()
    first_action_enrollments = serializers.IntegerField()
    first_action_hours_median = serializers.FloatField(allow_null=True)


@extend_schema_serializer(many=False)
class AdherenceReportSerializer(serializers.Serializer):
    group_by = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    as_of = serializers.DateTimeField()
    totals = serializers.DictField()
    results = AdherenceRowSerializer(many=True)


def adherence_report_data(*, user: User, group_by: str, start: Any, end: Any) -> dict[str, Any]:
    """The adherence report as the API answers it (the dashboard shows the same dictionary)."""
    window = adherence_window(start=start, end=end)
    results = adherence_by(user=user, group_by=group_by, window=window)
    return {
        "group_by": group_by,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "as_of": window.as_of.isoformat(),
        "totals": adherence_totals_of(results),
        "results": results,
    }


class AdherenceViewSet(ScopedViewSet):
    """Adherence metrics per prong, role, site, template or enrollment over tasks due in [start, end)."""

    queryset = Task.objects.none()
    renderer_classes = REPORT_RENDERERS
    # One report object, not a page of rows.
    pagination_class = None
    query_params_allowed = {"list": ("group_by", "start", "end")}

    @property
    def csv_columns(self) -> list[str]:
        extra = ["patient"] if self.request.query_params.get("group_by") == "enrollment" else []
        return ["group", *extra, *METRIC_FIELDS]

    @extend_schema(
        parameters=[
            OpenApiParameter("group_by", str, enum=list(GROUP_FIELDS), description="default prong"),
            OpenApiParameter(
                "start", str, description=f"YYYY-MM-DD (midnight UTC) or {DATETIME_HELP}; default end - 30 days"
            ),
            OpenApiParameter(
                "end", str, description=f"YYYY-MM-DD (midnight UTC) or {DATETIME_HELP}; exclusive; default now"
            ),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses=AdherenceReportSerializer,
    )
    def list(self, request: Request) -> Response:
        user = staff(request)
        if not can_view_reports(user):
            raise NotPermitted("adherence reports are for coordinators, auditors and admins")
        group_by = request.query_params.get("group_by", "prong")
        if group_by not in GROUP_FIELDS:
            raise ValidationError({"group_by": [f"must be one of {', '.join(GROUP_FIELDS)}"]})
        data = adherence_report_data(
            user=user, group_by=group_by, start=_when(request, "start"), end=_when(request, "end")
        )
        audit_note(request, entity_type="adherence", action=AuditAction.EXECUTE, subtype=f"adherence by {group_by}")
        return Response(data)


class AuditEventSerializer(serializers.ModelSerializer):
    actor_username = serializers.CharField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "recorded_at",
            "actor",
            "actor_username",
            "action",
            "subtype",
            "entity_type",
            "entity_id",
            "entity_ids",
            "patient",
            "outcome",
            "outcome_desc",
            "http_status",
            "method",
            "path",
            "query",
            "source_address",
            "request_id",
        ]
        read_only_fields = fields


class AuditEventFilter(django_filters.FilterSet):
    actor = IdFilter(field_name="actor_id")
    patient = IdFilter(field_name="patient_id")
    entity_type = django_filters.CharFilter(field_name="entity_type")
    entity_id = django_filters.CharFilter(field_name="entity_id")
    action = django_filters.MultipleChoiceFilter(choices=AuditAction.choices)
    outcome = django_filters.MultipleChoiceFilter(choices=AuditOutcome.choices)
    request_id = django_filters.CharFilter(field_name="request_id")
    since = AwareDateTimeFilter(field_name="recorded_at", lookup_expr="gte", help_text=f"{DATETIME_HELP}.")
    until = AwareDateTimeFilter(field_name="recorded_at", lookup_expr="lt", help_text=f"{DATETIME_HELP}.")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


class AuditEventViewSet(mixins.ListModelMixin, ScopedViewSet):
    """The audit trail (auditors and admins), newest first. `?format=csv` exports every matching event (up to
    AUDIT_EXPORT_MAX_ROWS) instead of one page."""

    queryset = AuditEvent.objects.none()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    renderer_classes = REPORT_RENDERERS
    csv_columns = AuditEventSerializer.Meta.fields

    def get_queryset(self) -> QuerySet[Any]:
        user = staff(self.request)
        if not can_view_audit_log(user):
            raise NotPermitted("the audit log is for auditors and admins")
        return scope_audit_events(user).order_by("-recorded_at", "-pk")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.accepted_renderer.format != "csv":
            return super().list(request, *args, **kwargs)
        events = self.filter_queryset(self.get_queryset())[:AUDIT_EXPORT_MAX_ROWS]
        audit_note(request, subtype="auditevent export", action=AuditAction.READ)
        return Response({"results": AuditEventSerializer(events, many=True).data})


class StaffSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "roles", "sites"]
        read_only_fields = fields


class StaffFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices, method="filter_role")
    site = IdFilter(field_name="sites")

    class Meta:
        model = User
        fields: list[str] = []

    def filter_role(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        if not value:
            return queryset
        if connection.features.supports_json_field_contains:
            return queryset.filter(roles__contains=[value])
        # SQLite has no JSON containment: match the quoted value inside the stored list.
        return queryset.filter(roles__icontains=f'"{value}"')


class UserViewSet(mixins.ListModelMixin, ScopedViewSet):
    """Active staff sharing a site with the caller (to find ids for care teams and assignment)."""

    queryset = User.objects.none()
    serializer_class = StaffSerializer
    filterset_class = StaffFilter

    def get_queryset(self) -> QuerySet[Any]:
        return scope_users(staff(self.request)).prefetch_related("sites").order_by("username", "pk")
