"""API views: a scoped queryset from pathways.selectors, a serializer, a filterset; every state change is a
POST action that calls one service. Objects outside the caller's scope are 404 (they are not in the queryset)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from pathways.api import serializers as s
from pathways.api.base import ScopedReadOnlyViewSet, ScopedViewSet, staff, validated_body
from pathways.api.compiled import CompiledListMixin, KeptLookupMixin
from pathways.api.filters import EnrollmentFilter, NotificationFilter, PathwayFilter, PatientFilter, TaskFilter
from pathways.choices import TaskStatus
from pathways.domain.units import to_int
from pathways.errors import InvalidInput, NotPermitted
from pathways.models import (
    CareTeamMember,
    Enrollment,
    Notification,
    PathwayTemplate,
    Patient,
    Rule,
    Schedule,
    Site,
    Task,
    TaskEvent,
    TaskTemplate,
)
from pathways.selectors.access import (
    can_migrate_enrollments,
    scope_care_team,
    scope_enrollments,
    scope_notifications,
    scope_pathway_templates,
    scope_patients,
    scope_sites,
    scope_tasks,
    scope_tasks_is_own_work,
    scope_tasks_to_claim,
)
from pathways.selectors.migration import (
    enrollment_migration_preview_to,
    enrollments_for_migration,
    enrollments_migration_previews,
    pathway_version_diff,
)
from pathways.selectors.schedule import MAX_PREVIEW_DAYS, enrollment_upcoming_occurrences
from pathways.selectors.tasks import task_list, task_list_for_query, task_queue_for_user
from pathways.services import enrollment as enrollment_services
from pathways.services import migration as migration_services
from pathways.services import tasks as task_services
from pathways.services.enrollment import schedule_release_hold
from pathways.services.notifications import notification_mark_read
from pathways.services.patients import patient_create, patient_update


def _validated(serializer_class: type[BaseSerializer], request: Request) -> dict[str, Any]:
    return validated_body(serializer_class, request)


class SiteViewSet(ScopedReadOnlyViewSet):
    """The sites the caller works at."""

    # Fail closed: the real queryset is always the scoped one from get_queryset (this gives the schema its model).
    queryset = Site.objects.none()
    serializer_class = s.SiteSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return scope_sites(staff(self.request)).order_by("code")


@extend_schema_view(
    create=extend_schema(request=s.PatientCreateSerializer, responses={201: s.PatientSerializer}),
    partial_update=extend_schema(request=s.PatientUpdateSerializer, responses=s.PatientUpdateResponseSerializer),
)
class PatientViewSet(mixins.CreateModelMixin, ScopedReadOnlyViewSet):
    """Patients: coordinators and auditors see their sites' patients; specialists those whose care team they
    are on. Coordinators register patients at their sites and edit them (PATCH), which re-plans the patient's
    live enrollments when the dialysis calendar, modality or risk medications change."""

    # Fail closed: the real queryset is always the scoped one from get_queryset (this gives the schema its model).
    queryset = Patient.objects.none()
    serializer_class = s.PatientSerializer
    filterset_class = PatientFilter

    def get_queryset(self) -> QuerySet[Any]:
        return scope_patients(staff(self.request)).order_by("site_id", "mrn")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _validated(s.PatientCreateSerializer, request)
        patient = patient_create(actor=staff(request), **data)
        return Response(s.PatientSerializer(patient).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()  # out of scope: 404 before anything is read from the body
        data = _validated(s.PatientUpdateSerializer, request)
        result = patient_update(patient_id=patient.pk, actor=staff(request), changes=data)
        replanned = s.ReplanOutcomeSerializer(result.replanned, many=True).data
        return Response({**s.PatientSerializer(result.patient).data, "replanned": replanned})


class PathwayViewSet(ScopedReadOnlyViewSet):
    """Pathway template versions with their task templates and rules (read-only; content is loaded from files)."""

    query_params_allowed = {"diff": ("from_version",)}

    # Fail closed: the real queryset is always the scoped one from get_queryset (this gives the schema its model).
    queryset = PathwayTemplate.objects.none()
    serializer_class = s.PathwayTemplateSerializer
    filterset_class = PathwayFilter

    def get_queryset(self) -> QuerySet[Any]:
        qs = scope_pathway_templates(staff(self.request)).prefetch_related(
            Prefetch("task_templates", queryset=TaskTemplate.objects.order_by("position")),
            Prefetch("rules", queryset=Rule.objects.order_by("position")),
        )
        return qs.order_by("slug", "-version")

    @extend_schema(
        request=None,
        responses=s.PathwayDiffSerializer,
        parameters=[
            OpenApiParameter(
                "from_version", int, description="the version to compare with; default: the one before this"
            )
        ],
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str) -> Response:
        """What this version changes, by task template and rule code: added, removed, and changed with the
        fields' old and new values (coordinators, admins). The first version lists everything as added."""
        pathway = self.get_object()
        _require_migrator(request)
        from_version = _version_param(request, "from_version")
        return Response(
            s.PathwayDiffSerializer(pathway_version_diff(pathway=pathway, from_version=from_version).as_dict()).data
        )


@extend_schema_view(
    create=extend_schema(request=s.EnrollmentCreateSerializer, responses={201: s.EnrollmentSerializer}),
    hold=extend_schema(request=s.ReasonSerializer, responses=s.EnrollmentSerializer),
    resume=extend_schema(request=None, responses=s.EnrollmentSerializer),
    complete=extend_schema(request=s.OptionalReasonSerializer, responses=s.EnrollmentSerializer),
    revoke=extend_schema(request=s.ReasonSerializer, responses=s.EnrollmentSerializer),
    diagnosis=extend_schema(request=s.DiagnosisSerializer, responses=s.EnrollmentSerializer),
    release_hold=extend_schema(request=s.ReleaseHoldSerializer, responses=s.EnrollmentSerializer),
    care_team=[
        extend_schema(
            methods=["GET"], request=None, responses=s.CareTeamMemberSerializer(many=True), summary="List the care team"
        ),
        extend_schema(
            methods=["POST"],
            request=s.CareTeamAddSerializer,
            responses={201: s.CareTeamMemberSerializer},
            summary="Add a member to the care team",
        ),
    ],
    care_team_end=extend_schema(request=None, responses=s.CareTeamMemberSerializer),
    schedule=extend_schema(
        request=None,
        responses=s.UpcomingOccurrenceSerializer(many=True),
        parameters=[OpenApiParameter("days", int, description=f"1..{MAX_PREVIEW_DAYS}, default 30")],
    ),
)
class EnrollmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, ScopedViewSet):
    """Enrollments (FHIR CarePlan): coordinators enrol patients, build care teams and end enrollments."""

    # Fail closed: the real queryset is always the scoped one from get_queryset (this gives the schema its model).
    queryset = Enrollment.objects.none()
    serializer_class = s.EnrollmentSerializer
    filterset_class = EnrollmentFilter
    query_params_allowed = {"schedule": ("days",), "migration_plan": ("to_version",)}

    def get_queryset(self) -> QuerySet[Any]:
        return (
            scope_enrollments(staff(self.request))
            .select_related("template", "patient__site")
            .order_by("-enrolled_at", "pk")
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _validated(s.EnrollmentCreateSerializer, request)
        enrollment = enrollment_services.enrollment_apply(
            patient_id=data["patient"].pk,
            pathway_slug=data["pathway"],
            coordinator=data["coordinator"],
            diagnosis_status=data["diagnosis_status"],
            actor=staff(request),
        )
        return Response(self._out(enrollment.pk), status=status.HTTP_201_CREATED)

    def _out(self, enrollment_id: int) -> Any:
        return s.EnrollmentSerializer(self.get_queryset().get(pk=enrollment_id)).data

    @action(detail=True, methods=["post"])
    def hold(self, request: Request, pk: str) -> Response:
        enrollment = self.get_object()
        data = _validated(s.ReasonSerializer, request)
        enrollment_services.enrollment_hold(enrollment_id=enrollment.pk, actor=staff(request), reason=data["reason"])
        return Response(self._out(enrollment.pk))

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        enrollment = self.get_object()
        _validated(s.StrictSerializer, request)
        enrollment_services.enrollment_resume(enrollment_id=enrollment.pk, actor=staff(request))
        return Response(self._out(enrollment.pk))

    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        enrollment = self.get_object()
        data = _validated(s.OptionalReasonSerializer, request)
        enrollment_services.enrollment_complete(
            enrollment_id=enrollment.pk, actor=staff(request), reason=data["reason"]
        )
        return Response(self._out(enrollment.pk))

    @action(detail=True, methods=["post"])
    def diagnosis(self, request: Request, pk: str) -> Response:
        """Record a suspected case's diagnosis: confirmed starts the treatment templates (first-due days from
        now); refuted (ruled out, reason required) completes the enrollment and cancels its open workup tasks."""
        enrollment = self.get_object()
        data = _validated(s.DiagnosisSerializer, request)
        enrollment_services.enrollment_diagnosis_record(
            enrollment_id=enrollment.pk,
            diagnosis_status=data["diagnosis_status"],
            reason=data["reason"],
            actor=staff(request),
        )
        return Response(self._out(enrollment.pk))

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        enrollment = self.get_object()
        data = _validated(s.ReasonSerializer, request)
        enrollment_services.enrollment_revoke(enrollment_id=enrollment.pk, actor=staff(request), reason=data["reason"])
        return Response(self._out(enrollment.pk))

    @action(detail=True, methods=["post"], url_path="release-hold", url_name="release-hold")
    def release_hold(self, request: Request, pk: str) -> Response:
        """Release a schedule a safety rule held (e.g. sodium thiosulfate): the team's nephrologist or a
        coordinator. It continues from now; missed sessions are not given."""
        enrollment = self.get_object()
        data = _validated(s.ReleaseHoldSerializer, request)
        schedule = Schedule.objects.filter(enrollment=enrollment, task_template__code=data["template"]).first()
        if schedule is None:
            raise ValidationError({"template": ["this enrollment has no schedule for that template"]})
        schedule_release_hold(schedule_id=schedule.pk, actor=staff(request), reason=data["reason"])
        return Response(self._out(enrollment.pk))

    @action(detail=True, methods=["get", "post"], url_path="care-team", url_name="care-team")
    def care_team(self, request: Request, pk: str) -> Response:
        enrollment = self.get_object()
        if request.method == "GET":
            members = (
                scope_care_team(staff(request))
                .filter(enrollment=enrollment)
                .select_related("user")
                .order_by("period_end", "role", "pk")
            )
            return Response(s.CareTeamMemberSerializer(members, many=True).data)
        data = _validated(s.CareTeamAddSerializer, request)
        member = enrollment_services.care_team_add(
            enrollment_id=enrollment.pk, user=data["user"], role=data["role"], actor=staff(request)
        )
        member = CareTeamMember.objects.select_related("user").get(pk=member.pk)
        return Response(s.CareTeamMemberSerializer(member).data, status=status.HTTP_201_CREATED)

    @action(
        detail=True,
        methods=["post"],
        url_path=r"care-team/(?P<member_id>[0-9]+)/end",
        url_name="care-team-end",
    )
    def care_team_end(self, request: Request, pk: str, member_id: str) -> Response:
        """End a care-team membership (its period closes; history is kept)."""
        enrollment = self.get_object()
        _validated(s.StrictSerializer, request)
        member = scope_care_team(staff(request)).filter(enrollment=enrollment, pk=int(member_id)).first()
        if member is None:
            raise ValidationError({"member_id": ["not a member of this enrollment's care team"]})
        member = enrollment_services.care_team_end(membership_id=member.pk, actor=staff(request))
        member = CareTeamMember.objects.select_related("user").get(pk=member.pk)
        return Response(s.CareTeamMemberSerializer(member).data)

    @action(detail=True, methods=["get"])
    def schedule(self, request: Request, pk: str) -> Response:
        """What will come due in the next `days` days: open tasks and occurrences the schedules will create."""
        enrollment = self.get_object()
        try:
            days = to_int(
                request.query_params.get("days", "30"), field_name="days", minimum=1, maximum=MAX_PREVIEW_DAYS
            )
        except InvalidInput as exc:
            raise ValidationError(exc.fields) from None
        items = enrollment_upcoming_occurrences(enrollment=enrollment, days=days)
        return Response(s.UpcomingOccurrenceSerializer(items, many=True).data)

    @extend_schema(
        request=None,
        responses=s.MigrationPlanSerializer,
        parameters=[OpenApiParameter("to_version", int, description="default: the pathway's active version")],
    )
    @action(detail=True, methods=["get"], url_path="migration-plan", url_name="migration-plan")
    def migration_plan(self, request: Request, pk: str) -> Response:
        """The dry run: what moving this enrollment to `to_version` (default: the active version) would do
        (coordinators, admins). Already on it: a plan that changes nothing."""
        enrollment = self.get_object()
        _require_migrator(request)
        plan = enrollment_migration_preview_to(
            enrollment=enrollment, to_version=_version_param(request, "to_version"), now=timezone.now()
        )
        return Response(s.MigrationPlanSerializer(plan.as_dict()).data)

    @extend_schema(request=s.EnrollmentMigrateSerializer, responses=s.MigrationPlanSerializer)
    @action(detail=True, methods=["post"])
    def migrate(self, request: Request, pk: str) -> Response:
        """Move this enrollment to another version of its pathway; answers the plan applied. 409 when it is
        already on that version, or on hold / ended without `include_on_hold` / `include_ended`."""
        enrollment = self.get_object()
        data = _validated(s.EnrollmentMigrateSerializer, request)
        plan = migration_services.enrollment_migrate(enrollment_id=enrollment.pk, actor=staff(request), **data)
        return Response(s.MigrationPlanSerializer(plan.as_dict()).data)

    @extend_schema(request=s.EnrollmentMigrationsSerializer, responses=s.MigrationRunSerializer)
    @action(detail=False, methods=["post"])
    def migrations(self, request: Request) -> Response:
        """Move many enrollments (the caller's sites'; admins: all) to `to_version`, at most `limit` per call,
        oldest first; `remaining` says how many are left: call again to carry on. `dry_run` answers the plans
        and changes nothing. On-hold and ended enrollments are skipped (and counted) unless included."""
        user = staff(request)
        _require_migrator(request)
        data = _validated(s.EnrollmentMigrationsSerializer, request)
        site_code = data["site"].code if data["site"] else None
        options = {
            "slug": data["pathway"],
            "to_version": data["to_version"],
            "from_version": data["from_version"],
            "site_code": site_code,
            "include_on_hold": data["include_on_hold"],
            "include_ended": data["include_ended"],
        }
        if data["dry_run"]:
            selection = enrollments_for_migration(user=user, **options)
            ids = selection.ids[: data["limit"]]
            plans = enrollments_migration_previews(ids=ids, to_version=data["to_version"], now=timezone.now())
            body: dict[str, Any] = {
                "selected": len(selection.ids),
                "migrated": 0,
                "already": 0,
                "failed": [],
                "skipped_on_hold": selection.skipped_on_hold,
                "skipped_ended": selection.skipped_ended,
                "remaining": len(selection.ids),
            }
        else:
            run = migration_services.enrollments_migrate(actor=user, limit=data["limit"], keep_plans=True, **options)
            plans = run.plans
            body = {
                "selected": run.selected,
                "migrated": run.migrated,
                "already": run.already,
                "failed": [{"enrollment": pk, "message": message} for pk, message in run.failed],
                "skipped_on_hold": run.skipped_on_hold,
                "skipped_ended": run.skipped_ended,
                "remaining": run.remaining,
            }
        body |= {"dry_run": data["dry_run"], "plans": [plan.as_dict() for plan in plans]}
        return Response(s.MigrationRunSerializer(body).data)


def _require_migrator(request: Request) -> None:
    if not can_migrate_enrollments(staff(request)):
        raise NotPermitted("only coordinators and admins can compare versions and move enrollments")


def _version_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return to_int(raw, field_name=name, minimum=1, maximum=s.MAX_VERSION)
    except InvalidInput as exc:
        raise ValidationError(exc.fields) from None


def _task_action_schema(request_serializer: type[BaseSerializer]) -> Any:
    return extend_schema(request=request_serializer, responses=s.TaskSerializer)


@extend_schema_view(
    assign=_task_action_schema(s.TaskAssignSerializer),
    claim=_task_action_schema(s.TaskVersionSerializer),
    unclaim=_task_action_schema(s.TaskVersionSerializer),
    accept=_task_action_schema(s.TaskVersionSerializer),
    start=_task_action_schema(s.TaskVersionSerializer),
    complete=_task_action_schema(s.TaskCompleteSerializer),
    hold=_task_action_schema(s.TaskHoldSerializer),
    resume=_task_action_schema(s.TaskVersionSerializer),
    cancel=_task_action_schema(s.TaskReasonSerializer),
    fail=_task_action_schema(s.TaskReasonSerializer),
    events=extend_schema(request=None, responses=s.TaskEventSerializer(many=True)),
)
class TaskViewSet(KeptLookupMixin, CompiledListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Tasks the caller may see, most urgent first. Every action needs the task's current `version`."""

    # Fail closed: the real queryset is always the scoped one from get_queryset (this gives the schema its model).
    queryset = Task.objects.none()
    serializer_class = s.TaskSerializer
    filterset_class = TaskFilter

    # The actions that change a task: the view reads the row locked, in the user's scope, with what the
    # service and the serializer need (task_services.tasks_for_update), and hands it to the service.
    changes = frozenset(
        {"assign", "claim", "unclaim", "accept", "start", "complete", "cancel", "fail", "hold", "resume"}
    )
    # Their lookup is compiled once per user (pathways.api.compiled.KeptLookupMixin).
    kept_lookups = changes

    def get_queryset(self) -> QuerySet[Any]:
        user = staff(self.request)
        if self.action == "claim":
            return task_services.tasks_for_update(scope_tasks_to_claim(user))
        if self.action in self.changes:
            return task_services.tasks_for_update(scope_tasks(user))
        # A list for one patient, or of the user's own tasks, narrows the scope itself (the `patient` and
        # `assignee` filters still apply and validate).
        if self.action == "list":
            return task_list_for_query(user=user, query=self.request.query_params)
        return task_list(user=user)

    @property
    def total_with_page(self) -> bool:
        # A specialist's tasks are their care teams' (pathways.api.pagination.total_in_page).
        return scope_tasks_is_own_work(staff(self.request))

    def _done(self, task: Task) -> Response:
        # The row the service changed, as it stands now: no second read (issue 15).
        return Response(s.TaskSerializer(task).data)

    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        """Assign to a user holding the task's role (or null: back to the pool). Coordinators and admins."""
        task = self.get_object()
        data = _validated(s.TaskAssignSerializer, request)
        task = task_services.task_assign(
            task_id=task.pk,
            assignee=data["assignee"],
            actor=staff(request),
            expected_version=data["version"],
            reason=data["reason"],
            locked=task,
        )
        return self._done(task)

    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str) -> Response:
        """Take a task from your role's pool: assigned to you and accepted."""
        task = self.get_object()
        data = _validated(s.TaskVersionSerializer, request)
        task = task_services.task_claim(
            task_id=task.pk, actor=staff(request), expected_version=data["version"], locked=task
        )
        return self._done(task)

    @action(detail=True, methods=["post"])
    def unclaim(self, request: Request, pk: str) -> Response:
        """Give your task back to the role pool."""
        task = self.get_object()
        data = _validated(s.TaskVersionSerializer, request)
        task = task_services.task_unclaim(
            task_id=task.pk, actor=staff(request), expected_version=data["version"], locked=task
        )
        return self._done(task)

    def _transition(self, request: Request, to_status: str, serializer_class: type[BaseSerializer]) -> Response:
        task = self.get_object()
        data = _validated(serializer_class, request)
        task = task_services.task_transition(
            task_id=task.pk,
            to_status=to_status,
            actor=staff(request),
            expected_version=data["version"],
            reason=data.get("reason", ""),
            outcome=data.get("outcome", ""),
            locked=task,
        )
        return self._done(task)

    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        return self._transition(request, TaskStatus.ACCEPTED, s.TaskVersionSerializer)

    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._transition(request, TaskStatus.IN_PROGRESS, s.TaskVersionSerializer)

    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        return self._transition(request, TaskStatus.COMPLETED, s.TaskCompleteSerializer)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._transition(request, TaskStatus.CANCELLED, s.TaskReasonSerializer)

    @action(detail=True, methods=["post"])
    def fail(self, request: Request, pk: str) -> Response:
        return self._transition(request, TaskStatus.FAILED, s.TaskReasonSerializer)

    @action(detail=True, methods=["post"])
    def hold(self, request: Request, pk: str) -> Response:
        """Put on hold with a reason, optionally until a time; resume returns it to where it was."""
        task = self.get_object()
        data = _validated(s.TaskHoldSerializer, request)
        task = task_services.task_hold(
            task_id=task.pk,
            actor=staff(request),
            expected_version=data["version"],
            reason=data["reason"],
            until=data["until"],
            locked=task,
        )
        return self._done(task)

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        data = _validated(s.TaskVersionSerializer, request)
        task = task_services.task_resume(
            task_id=task.pk, actor=staff(request), expected_version=data["version"], locked=task
        )
        return self._done(task)

    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk: str) -> Response:
        """The task's history: creation, assignments, transitions, escalations (append-only)."""
        task = self.get_object()
        events = TaskEvent.objects.filter(task=task).order_by("at", "pk")
        return Response(s.TaskEventSerializer(events, many=True).data)


@extend_schema_view(list=extend_schema(summary="My queue: assigned to me + my roles' pools on my care teams"))
class QueueViewSet(CompiledListMixin, mixins.ListModelMixin, ScopedViewSet):
    """The caller's work: open tasks assigned to them plus the pools of their roles on the care teams they are
    on. Overdue first, then priority (stat > asap > urgent > routine), then due time."""

    # Fail closed: the real queryset is always the scoped one from get_queryset (this gives the schema its model).
    queryset = Task.objects.none()
    serializer_class = s.TaskSerializer
    filterset_class = TaskFilter

    # The queue is the user's own work, never a site's: its page carries its total (pagination.total_in_page).
    total_with_page = True

    def get_queryset(self) -> QuerySet[Any]:
        return task_queue_for_user(user=staff(self.request))


@extend_schema_view(read=extend_schema(request=None, responses=s.NotificationSerializer))
class NotificationViewSet(ScopedReadOnlyViewSet):
    """The caller's own notifications, newest first."""

    # Fail closed: the real queryset is always the scoped one from get_queryset (this gives the schema its model).
    queryset = Notification.objects.none()
    serializer_class = s.NotificationSerializer
    filterset_class = NotificationFilter

    def get_queryset(self) -> QuerySet[Any]:
        return scope_notifications(staff(self.request)).order_by("-created_at", "-pk")

    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str) -> Response:
        notification = self.get_object()
        _validated(s.StrictSerializer, request)
        notification = notification_mark_read(notification_id=notification.pk, user=staff(request))
        return Response(s.NotificationSerializer(notification).data)
