"""Output serializers describe rows; input serializers are explicit allow-lists of what a client may send.

Status, version, audit fields and ownership are never writable here: they change only through actions that
call a service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from pathways.api.base import StrictSerializer
from pathways.api.fields import AwareDateTimeField, BoundedDateField, LocalTimeField, StrictIntegerField, strict_id
from pathways.choices import (
    OPEN_TASK_STATUSES,
    DiagnosisStatus,
    DialysisModality,
    RiskFactor,
    RiskMedication,
    Role,
    Sex,
    TaskStatus,
    Therapy,
    Weekday,
)
from pathways.domain import instants
from pathways.domain.applicability import precautions_for_role
from pathways.errors import InvalidInput
from pathways.models import (
    CareTeamMember,
    Enrollment,
    Notification,
    PathwayTemplate,
    Patient,
    Rule,
    Site,
    Task,
    TaskEvent,
    TaskTemplate,
)
from pathways.selectors.access import scope_patients, scope_sites, scope_users

# --- output ------------------------------------------------------------------------------------------


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "code", "name", "timezone"]
        read_only_fields = fields


class PatientSerializer(serializers.ModelSerializer):
    dialysis_session_time = LocalTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Patient
        fields = [
            "id",
            "site",
            "mrn",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "dialysis_modality",
            "dialysis_days",
            "dialysis_session_time",
            "risk_factors",
            "risk_medications",
            "current_therapies",
            "created_at",
        ]
        read_only_fields = fields


class TaskTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskTemplate
        fields = [
            "id",
            "code",
            "title",
            "prong",
            "stage",
            "role",
            "supporting_roles",
            "priority",
            "first_due",
            "due_within_hours",
            "recurrence_kind",
            "recurrence",
            "applies_if",
            "prerequisites",
            "instructions",
            "citation",
            "position",
        ]
        read_only_fields = fields


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rule
        fields = ["id", "code", "description", "when", "actions", "citation", "position"]
        read_only_fields = fields


class PathwayTemplateSerializer(serializers.ModelSerializer):
    task_templates = TaskTemplateSerializer(many=True, read_only=True)
    rules = RuleSerializer(many=True, read_only=True)

    class Meta:
        model = PathwayTemplate
        fields = [
            "id",
            "slug",
            "version",
            "title",
            "description",
            "status",
            "citations",
            "precautions",
            "content_hash",
            "created_at",
            "task_templates",
            "rules",
        ]
        read_only_fields = fields


class PrecautionSerializer(serializers.Serializer):
    """A standing precaution of the pathway version (content key `precautions`)."""

    code = serializers.CharField()
    text = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField(), help_text="Role values whose tasks show it.")
    citation = serializers.CharField()


def task_precautions(task: Task) -> list[dict[str, Any]]:
    """The pinned version's standing precautions that name the task's role (shapes as PrecautionSerializer)."""
    return precautions_for_role(task.enrollment.template.precautions, task.role)


class EnrollmentSerializer(serializers.ModelSerializer):
    pathway = serializers.CharField(source="pathway_slug", read_only=True)
    pathway_version = serializers.IntegerField(source="template.version", read_only=True)
    precautions = PrecautionSerializer(source="template.precautions", many=True, read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "patient",
            "pathway",
            "template",
            "pathway_version",
            "status",
            "diagnosis_status",
            "diagnosis_recorded_at",
            "precautions",
            "coordinator",
            "enrolled_at",
            "enrolled_by",
            "held_at",
            "ended_at",
            "end_reason",
            "medications_at_enrollment",
            "risk_factors_at_enrollment",
        ]
        read_only_fields = fields


class CareTeamMemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = CareTeamMember
        fields = ["id", "enrollment", "user", "username", "role", "period_start", "period_end"]
        read_only_fields = fields


def _task_is_overdue(task: Task) -> bool:
    return task.status in OPEN_TASK_STATUSES and task.due_at < timezone.now()


def _datetime(value: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """As DRF's DateTimeField renders with DATETIME_FORMAT "iso-8601": in the current timezone `tz`, UTC as "Z"."""
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# A task's API fields, in order, each with how the fast path reads it from a Task and the current timezone (one list:
# TaskSerializer's Meta.fields and its to_representation both come from here). The timezone is looked up once per
# task: through asgiref's Local, that lookup cost more than formatting the datetime. A getter must return what DRF's
# field for that name would render; tests/api/test_task_serializer_fast_path.py compares the two for tasks in every
# kind of state.
TASK_FIELDS: tuple[tuple[str, Callable[[Task, dt.tzinfo], Any]], ...] = (
    ("id", lambda t, _: t.pk),
    ("enrollment", lambda t, _: t.enrollment_id),
    ("patient", lambda t, _: t.enrollment.patient_id),
    ("template", lambda t, _: t.template.code if t.template_id is not None and t.template else None),
    ("schedule", lambda t, _: t.schedule_id),
    ("occurrence", lambda t, _: t.occurrence),
    ("rule_code", lambda t, _: str(t.rule_code)),
    ("title", lambda t, _: str(t.title)),
    ("prong", lambda t, _: str(t.prong)),
    ("role", lambda t, _: str(t.role)),
    ("assignee", lambda t, _: t.assignee_id),
    ("status", lambda t, _: str(t.status)),
    ("status_before_hold", lambda t, _: str(t.status_before_hold)),
    ("hold_until", lambda t, tz: _datetime(t.hold_until, tz)),
    ("priority", lambda t, _: str(t.priority)),
    ("available_at", lambda t, tz: _datetime(t.available_at, tz)),
    ("due_at", lambda t, tz: _datetime(t.due_at, tz)),
    ("is_overdue", lambda t, _: _task_is_overdue(t)),
    ("blocked_by", lambda t, _: t.blocked_by),
    ("instructions", lambda t, _: str(t.instructions)),
    ("precautions", lambda t, _: task_precautions(t)),
    ("started_at", lambda t, tz: _datetime(t.started_at, tz)),
    ("completed_at", lambda t, tz: _datetime(t.completed_at, tz)),
    ("completed_by", lambda t, _: t.completed_by_id),
    ("outcome", lambda t, _: str(t.outcome)),
    ("version", lambda t, _: t.version),
    ("escalation_level", lambda t, _: t.escalation_level),
    ("escalated_at", lambda t, tz: _datetime(t.escalated_at, tz)),
    ("created_at", lambda t, tz: _datetime(t.created_at, tz)),
    ("updated_at", lambda t, tz: _datetime(t.updated_at, tz)),
)


class TaskSerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="enrollment.patient_id", read_only=True)
    template: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="code", read_only=True)
    is_overdue = serializers.SerializerMethodField()
    precautions = serializers.SerializerMethodField()
    # Blank when no rule created the task / when the task is not on hold (the schema must allow "").
    rule_code = serializers.CharField(read_only=True, allow_blank=True)
    status_before_hold = serializers.ChoiceField(choices=TaskStatus.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Task
        fields = [name for name, _ in TASK_FIELDS]
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_is_overdue(self, task: Task) -> bool:
        return _task_is_overdue(task)

    @extend_schema_field(PrecautionSerializer(many=True))
    def get_precautions(self, task: Task) -> list[dict[str, Any]]:
        return task_precautions(task)

    def to_representation(self, instance: Task) -> dict[str, Any]:
        """The fields of TASK_FIELDS, read by their getters. DRF's generic path (instantiating 29 fields per
        request, then a get_attribute and a to_representation call per field and row) was the largest framework
        cost of the queue and task list pages (docs/benchmarks.md, "Pages"). The declared fields still define the
        schema; tests/api/test_task_serializer_fast_path.py checks this returns exactly what the generic path
        returns."""
        tz = timezone.get_current_timezone()
        return {name: get(instance, tz) for name, get in TASK_FIELDS}


class TaskEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskEvent
        fields = ["id", "task", "kind", "at", "actor", "from_status", "to_status", "reason", "data"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "task", "kind", "message", "created_at", "read_at"]
        read_only_fields = fields


class UpcomingOccurrenceSerializer(serializers.Serializer):
    template = serializers.CharField(allow_null=True)
    title = serializers.CharField()
    role = serializers.CharField()
    prong = serializers.CharField()
    available_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    occurrence = serializers.IntegerField(allow_null=True)
    task = serializers.IntegerField(source="task_id", allow_null=True, help_text="Set when the task already exists.")


# --- input -------------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A reference by id, resolved only among the objects the requesting user may see.

    An id outside the caller's scope reads as "does not exist", exactly like an id that does not exist."""

    def __init__(self, *, scope: Callable[[Any], QuerySet[Any]], **kwargs: Any) -> None:
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        return self.scope(self.context["request"].user)

    def to_internal_value(self, data: Any) -> Any:
        # The one integer reader first: Django would otherwise look up pk "\u0661\u0660" as 10.
        try:
            pk = strict_id(data, field_name=self.field_name or "id")
        except InvalidInput:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(pk)


class PatientCreateSerializer(StrictSerializer):
    site = ScopedPrimaryKeyField(scope=scope_sites)
    mrn = serializers.CharField(max_length=64)
    given_name = serializers.CharField(max_length=100)
    family_name = serializers.CharField(max_length=100)
    birth_date = BoundedDateField(help_text=f"From {instants.BIRTH_DATE_EARLIEST.isoformat()} to today.")
    sex = serializers.ChoiceField(choices=Sex.choices, default=Sex.UNKNOWN)
    dialysis_modality = serializers.ChoiceField(choices=DialysisModality.choices)
    dialysis_days = serializers.ListField(
        child=serializers.ChoiceField(choices=Weekday.choices), default=list, help_text="Monday = 0"
    )
    dialysis_session_time = LocalTimeField(required=False, allow_null=True, default=None)
    risk_factors = serializers.ListField(child=serializers.ChoiceField(choices=RiskFactor.choices), default=list)
    risk_medications = serializers.ListField(
        child=serializers.ChoiceField(choices=RiskMedication.choices), default=list
    )

    current_therapies = serializers.ListField(
        child=serializers.ChoiceField(choices=Therapy.choices),
        default=list,
        help_text="Therapies the patient takes now (FHIR MedicationStatement, status active); rules test them.",
    )

    def validate_birth_date(self, value: dt.date) -> dt.date:
        try:
            return instants.check_birth_date(value, today=timezone.localdate())
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.fields["birth_date"]) from None


class PatientUpdateSerializer(PatientCreateSerializer):
    """PATCH a patient: any of the registration fields but the site; absent fields keep their value. A change to
    the dialysis modality, days or session time, or to the risk medications, re-plans the live enrollments."""

    site = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required, field.default = False, empty


class ReplanOutcomeSerializer(serializers.Serializer):
    enrollment = serializers.IntegerField(source="enrollment_id")
    started = serializers.ListField(child=serializers.CharField(), help_text="Template codes that now apply.")
    ended = serializers.ListField(child=serializers.CharField(), help_text="Template codes that no longer apply.")
    replanned = serializers.DictField(
        child=serializers.DateTimeField(allow_null=True),
        help_text="Template code -> its next occurrence on the new dialysis calendar (UTC), null when finished.",
    )
    tasks_cancelled = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of tasks cancelled.")


class PatientUpdateResponseSerializer(PatientSerializer):
    replanned = ReplanOutcomeSerializer(many=True, read_only=True)

    class Meta(PatientSerializer.Meta):
        fields = [*PatientSerializer.Meta.fields, "replanned"]
        read_only_fields = fields


class EnrollmentCreateSerializer(StrictSerializer):
    patient = ScopedPrimaryKeyField(scope=scope_patients)
    pathway = serializers.SlugField(max_length=64, help_text="Pathway slug; its active version is applied.")
    coordinator = ScopedPrimaryKeyField(scope=scope_users, required=False, allow_null=True, default=None)
    diagnosis_status = serializers.ChoiceField(
        choices=[DiagnosisStatus.PROVISIONAL, DiagnosisStatus.CONFIRMED],
        default=DiagnosisStatus.CONFIRMED,
        help_text="provisional: a suspected case, workup templates only; confirmed (default): treatment.",
    )


class DiagnosisSerializer(StrictSerializer):
    diagnosis_status = serializers.ChoiceField(
        choices=[DiagnosisStatus.CONFIRMED, DiagnosisStatus.REFUTED],
        help_text="confirmed starts treatment; refuted (ruled out) completes the enrollment.",
    )
    reason = serializers.CharField(
        max_length=2000, required=False, default="", allow_blank=True, help_text="Required when refuted."
    )


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why (required).")


class OptionalReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class ReleaseHoldSerializer(StrictSerializer):
    template = serializers.SlugField(help_text="Code of the held schedule's task template, e.g. sodium-thiosulfate.")
    reason = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class CareTeamAddSerializer(StrictSerializer):
    user = ScopedPrimaryKeyField(scope=scope_users)
    role = serializers.ChoiceField(choices=Role.choices)


class TaskVersionSerializer(StrictSerializer):
    version = StrictIntegerField(
        min_value=1, max_value=2**31 - 1, help_text="The version you read; a stale one is a 409."
    )


class TaskAssignSerializer(TaskVersionSerializer):
    assignee = ScopedPrimaryKeyField(scope=scope_users, allow_null=True, help_text="A user id, or null for the pool.")
    reason = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class TaskCompleteSerializer(TaskVersionSerializer):
    outcome = serializers.CharField(max_length=5000, help_text="What was done or found.")


class TaskHoldSerializer(TaskVersionSerializer):
    reason = serializers.CharField(max_length=2000)
    until = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text=f"At most {instants.MAX_HOLD.days} days ahead."
    )


class TaskReasonSerializer(TaskVersionSerializer):
    reason = serializers.CharField(max_length=2000)


class TokenRequestSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, style={"input_type": "password"}, trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


# --- version migration (docs/pathway-content.md, "Moving enrollments to a new version") ----------------------

MAX_VERSION = 2**31 - 1


class DiffSectionSerializer(serializers.Serializer):
    added = serializers.ListField(child=serializers.CharField(), help_text="Codes only in the new version.")
    removed = serializers.ListField(child=serializers.CharField(), help_text="Codes only in the old version.")
    changed = serializers.ListField(
        child=serializers.DictField(), help_text='[{"code", "fields": {name: {"old", "new"}}}]'
    )


class PathwayDiffSerializer(serializers.Serializer):
    pathway = serializers.CharField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    task_templates = DiffSectionSerializer()
    rules = DiffSectionSerializer()


class MigrationPlanSerializer(serializers.Serializer):
    enrollment = serializers.IntegerField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    tasks_created = serializers.ListField(
        child=serializers.DictField(), help_text='[{"template", "available_at", "due_at"}]'
    )
    tasks_cancelled = serializers.ListField(
        child=serializers.DictField(), help_text='[{"task", "template", "status", "reason"}]'
    )
    schedules_started = serializers.ListField(child=serializers.DictField(), help_text='[{"template", "next_due_at"}]')
    schedules_replanned = serializers.ListField(
        child=serializers.DictField(), help_text='[{"template", "schedule", "next_due_at": {"old", "new"}, "finished"}]'
    )
    schedules_ended = serializers.ListField(
        child=serializers.DictField(), help_text='[{"template", "schedule", "reason"}]'
    )
    open_tasks_kept = serializers.IntegerField()


class EnrollmentMigrateSerializer(StrictSerializer):
    to_version = StrictIntegerField(
        min_value=1, max_value=MAX_VERSION, help_text="The version of the enrollment's pathway to move to."
    )
    include_on_hold = serializers.BooleanField(default=False, help_text="Move it even if it is on hold.")
    include_ended = serializers.BooleanField(default=False, help_text="Move it even if completed or revoked.")


class EnrollmentMigrationsSerializer(StrictSerializer):
    pathway = serializers.SlugField(max_length=64)
    to_version = StrictIntegerField(min_value=1, max_value=MAX_VERSION)
    from_version = StrictIntegerField(min_value=1, max_value=MAX_VERSION, required=False, allow_null=True, default=None)
    site = ScopedPrimaryKeyField(scope=scope_sites, required=False, allow_null=True, default=None)
    include_on_hold = serializers.BooleanField(default=False)
    include_ended = serializers.BooleanField(default=False)
    dry_run = serializers.BooleanField(default=False, help_text="Return the plans; change nothing.")
    limit = StrictIntegerField(
        min_value=1, max_value=500, default=100, help_text="At most this many enrollments per call (1-500)."
    )


class MigrationFailureSerializer(serializers.Serializer):
    enrollment = serializers.IntegerField()
    message = serializers.CharField()


class MigrationRunSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    selected = serializers.IntegerField(help_text="Enrollments selected, before `limit`.")
    migrated = serializers.IntegerField()
    already = serializers.IntegerField(help_text="Found on the target version by the time their turn came.")
    failed = MigrationFailureSerializer(many=True)
    skipped_on_hold = serializers.IntegerField()
    skipped_ended = serializers.IntegerField()
    remaining = serializers.IntegerField(help_text="Selected but not reached: call again to carry on.")
    plans = MigrationPlanSerializer(many=True, help_text="The dry run's plans, or the plans applied.")
