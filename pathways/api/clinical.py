"""Clinical endpoints: observations (with derived values and what the rules did), flags, medication changes,
and completing a task with the values it produced. Reads are scoped by the enrollments the caller may see;
writes call one service each, which checks scope and permission again and runs the rules in one transaction."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from pathways.api.base import ScopedViewSet, StrictSerializer, staff, validated_body
from pathways.api.fields import AwareDateTimeField, AwareDateTimeFilter, StrictIntegerField
from pathways.api.filters import IdFilter, StrictBooleanFilter
from pathways.choices import (
    DerivedCode,
    Finding,
    MedicationChangeKind,
    MedicationRoute,
    ObservationCode,
    RiskMedication,
)
from pathways.models import Flag, MedicationChange, Observation, RuleFiring
from pathways.selectors.access import scope_enrollments
from pathways.services.medications import medication_change_record
from pathways.services.observations import (
    ClinicalRecordResult,
    ObservationInput,
    observations_record,
    task_complete_with_values,
)

ALL_CODES = [*ObservationCode.values, *DerivedCode.values]

# --- output --------------------------------------------------------------------------------------------


class ObservationSerializer(serializers.ModelSerializer):
    inputs: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Observation
        fields = [
            "id",
            "enrollment",
            "code",
            "value",
            "unit",
            "entered_value",
            "entered_unit",
            "reference_high",
            "reference_high_defaulted",
            "effective_at",
            "recorded_at",
            "recorded_by",
            "assessment",
            "task",
            "inputs",
        ]
        read_only_fields = fields


class FlagSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = Flag
        fields = [
            "id",
            "enrollment",
            "code",
            "rule_code",
            "severity",
            "message",
            "active",
            "source_observation",
            "raised_at",
            "cleared_at",
            "cleared_by_observation",
        ]
        read_only_fields = fields

    def get_active(self, flag: Flag) -> bool:
        return flag.cleared_at is None


class RuleFiringSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleFiring
        fields = ["id", "rule_code", "outcome", "observation", "task", "flag", "schedule", "data", "fired_at"]
        read_only_fields = fields


class MedicationChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = MedicationChange
        fields = ["id", "enrollment", "medication", "drug_name", "kind", "route", "note", "effective_at", "recorded_at"]
        read_only_fields = fields


class ClinicalResultSerializer(serializers.Serializer):
    observations = ObservationSerializer(many=True)
    derived = ObservationSerializer(many=True)
    assessment = serializers.IntegerField(source="assessment.pk", allow_null=True, default=None)
    firings = RuleFiringSerializer(many=True)
    tasks_created = serializers.SerializerMethodField()
    flags_raised = FlagSerializer(many=True)
    flags_cleared = FlagSerializer(many=True)
    already_stored = serializers.SerializerMethodField(
        help_text="Ids of the observations and derived values that were stored before this request (a resent "
        "result: same code, value, unit and effective time). They run no rules again."
    )

    def get_tasks_created(self, result: ClinicalRecordResult) -> list[int]:
        return [t.pk for t in result.tasks_created]

    def get_already_stored(self, result: ClinicalRecordResult) -> list[int]:
        return [o.pk for o in result.already_stored]


# --- input ---------------------------------------------------------------------------------------------


class ObservationValueSerializer(StrictSerializer):
    code = serializers.ChoiceField(choices=ObservationCode.choices)
    # Kept as text: the service parses it exactly (no float rounding) and explains what is wrong.
    value = serializers.CharField(max_length=32)
    unit = serializers.CharField(max_length=32, allow_blank=True, required=False, default="")
    effective_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    reference_high = serializers.CharField(
        max_length=32, required=False, allow_null=True, default=None, help_text="The lab's upper normal (PTH)."
    )


class ObservationCreateSerializer(StrictSerializer):
    enrollment = StrictIntegerField(min_value=1)
    values = ObservationValueSerializer(many=True, required=False, default=list)
    findings = serializers.ListField(
        child=serializers.ChoiceField(choices=Finding.choices), required=False, default=list
    )
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    effective_at = AwareDateTimeField(required=False, allow_null=True, default=None)


class TaskCompletionSerializer(StrictSerializer):
    task = StrictIntegerField(min_value=1)
    version = StrictIntegerField(
        min_value=1, max_value=2**31 - 1, help_text="The version you read; a stale one is a 409."
    )
    values = ObservationValueSerializer(many=True, required=False, default=list)
    findings = serializers.ListField(
        child=serializers.ChoiceField(choices=Finding.choices), required=False, default=list
    )
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    outcome = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class MedicationChangeCreateSerializer(StrictSerializer):
    enrollment = StrictIntegerField(min_value=1)
    medication = serializers.ChoiceField(choices=RiskMedication.choices)
    drug_name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=MedicationChangeKind.choices, default=MedicationChangeKind.STARTED)
    route = serializers.ChoiceField(
        choices=MedicationRoute.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="Route of administration; subcutaneous raises the pathway's skin-precaution flag.",
    )
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    effective_at = AwareDateTimeField(required=False, allow_null=True, default=None)


def _inputs(values: list[dict[str, Any]]) -> list[ObservationInput]:
    return [
        ObservationInput(v["code"], v["value"], v.get("unit"), v.get("effective_at"), v.get("reference_high"))
        for v in values
    ]


def _validated(serializer_class: type[serializers.BaseSerializer], request: Request) -> dict[str, Any]:
    return validated_body(serializer_class, request)


# --- filters -------------------------------------------------------------------------------------------


class ObservationFilter(django_filters.FilterSet):
    enrollment = IdFilter(field_name="enrollment_id")
    code = django_filters.MultipleChoiceFilter(choices=[(c, c) for c in ALL_CODES])
    since = AwareDateTimeFilter(field_name="effective_at", lookup_expr="gte")
    until = AwareDateTimeFilter(field_name="effective_at", lookup_expr="lt")

    class Meta:
        model = Observation
        fields: list[str] = []


class FlagFilter(django_filters.FilterSet):
    enrollment = IdFilter(field_name="enrollment_id")
    active = StrictBooleanFilter(method="filter_active")

    class Meta:
        model = Flag
        fields: list[str] = []

    def filter_active(self, queryset: QuerySet[Flag], name: str, value: bool | None) -> QuerySet[Flag]:
        if value is None:
            return queryset
        return queryset.filter(cleared_at__isnull=value)


class MedicationChangeFilter(django_filters.FilterSet):
    enrollment = IdFilter(field_name="enrollment_id")

    class Meta:
        model = MedicationChange
        fields: list[str] = []


# --- views ---------------------------------------------------------------------------------------------


@extend_schema(
    request=ObservationCreateSerializer,
    responses={200: ClinicalResultSerializer, 201: ClinicalResultSerializer},
    methods=["POST"],
)
class ObservationViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, ScopedViewSet):
    """Observations of the enrollments the caller may see, newest first; derived values list their inputs.

    POST records a panel (one or more values, optional assessment findings) for one enrollment: units are
    normalized, derived values computed and the pathway's rules run, all or nothing. 201 when anything was
    stored; 200 with the stored rows when every value was already stored (a resent result) and nothing was."""

    queryset = Observation.objects.none()
    serializer_class = ObservationSerializer
    filterset_class = ObservationFilter

    def get_queryset(self) -> QuerySet[Any]:
        return (
            Observation.objects.filter(enrollment__in=scope_enrollments(staff(self.request)))
            .prefetch_related("inputs")
            .order_by("-effective_at", "-pk")
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _validated(ObservationCreateSerializer, request)
        result = observations_record(
            enrollment_id=data["enrollment"],
            values=_inputs(data["values"]),
            findings=data["findings"],
            note=data["note"],
            effective_at=data["effective_at"],
            actor=staff(request),
        )
        code = status.HTTP_201_CREATED if result.wrote_anything else status.HTTP_200_OK
        return Response(ClinicalResultSerializer(result).data, status=code)


class FlagViewSet(mixins.ListModelMixin, ScopedViewSet):
    """Flags raised by rules on the enrollments the caller may see (`active=true` for the current ones)."""

    queryset = Flag.objects.none()
    serializer_class = FlagSerializer
    filterset_class = FlagFilter

    def get_queryset(self) -> QuerySet[Any]:
        return Flag.objects.filter(enrollment__in=scope_enrollments(staff(self.request))).order_by("-raised_at", "-pk")


@extend_schema(request=MedicationChangeCreateSerializer, responses={201: MedicationChangeSerializer}, methods=["POST"])
class MedicationChangeViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, ScopedViewSet):
    """Risk-medication changes; recording a new order fires the medication-review rule."""

    queryset = MedicationChange.objects.none()
    serializer_class = MedicationChangeSerializer
    filterset_class = MedicationChangeFilter

    def get_queryset(self) -> QuerySet[Any]:
        return MedicationChange.objects.filter(enrollment__in=scope_enrollments(staff(self.request))).order_by(
            "-effective_at", "-pk"
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _validated(MedicationChangeCreateSerializer, request)
        result = medication_change_record(
            enrollment_id=data["enrollment"],
            medication=data["medication"],
            drug_name=data["drug_name"],
            kind=data["kind"],
            route=data["route"],
            note=data["note"],
            effective_at=data["effective_at"],
            actor=staff(request),
        )
        return Response(MedicationChangeSerializer(result.change).data, status=status.HTTP_201_CREATED)


@extend_schema(request=TaskCompletionSerializer, responses={201: ClinicalResultSerializer})
class TaskCompletionViewSet(ScopedViewSet):
    """Complete a task with the values it produced (labs drawn, assessment done): stored and run through the
    rules in the same transaction as the completion."""

    serializer_class = TaskCompletionSerializer

    def create(self, request: Request) -> Response:
        data = _validated(TaskCompletionSerializer, request)
        _, result = task_complete_with_values(
            task_id=data["task"],
            actor=staff(request),
            expected_version=data["version"],
            values=_inputs(data["values"]),
            findings=data["findings"],
            note=data["note"],
            outcome=data["outcome"],
        )
        return Response(ClinicalResultSerializer(result).data, status=status.HTTP_201_CREATED)
