"""Enrollment writes: applying a pathway to a patient, the enrollment lifecycle, care teams, and releasing a
safety hold (which, like an enrollment resume, restarts a schedule and its held tasks together)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from pathways.choices import (
    LIVE_ENROLLMENT_STATUSES,
    OPEN_TASK_STATUSES,
    SPECIALIST_ROLES,
    DiagnosisStatus,
    EnrollmentEventKind,
    EnrollmentStatus,
    PathwayStage,
    RecurrenceKind,
    Role,
    RuleOutcome,
    ScheduleStatus,
    TaskStatus,
    TemplateStatus,
)
from pathways.domain.applicability import STAGE_FOR_DIAGNOSIS, enrollment_stage, template_applies
from pathways.errors import AlreadyEnrolled, Conflict, IllegalTransition, InvalidInput, NotFound, NotPermitted
from pathways.models import (
    CareTeamMember,
    Enrollment,
    EnrollmentEvent,
    PathwayTemplate,
    Patient,
    RuleFiring,
    Schedule,
    Task,
    TaskTemplate,
    User,
)
from pathways.selectors.access import can_enroll_patient, can_manage_enrollment, is_admin
from pathways.selectors.templates import stage_templates
from pathways.services.schedules import (
    schedule_clear_safety_hold,
    schedule_lock,
    schedule_resume,
    schedules_finish,
    schedules_pause,
    schedules_start,
)
from pathways.services.tasks import task_resume, task_transition

logger = logging.getLogger(__name__)


def _record(
    enrollment: Enrollment,
    kind: str,
    *,
    actor: User | None,
    at: dt.datetime,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    EnrollmentEvent.objects.create(enrollment=enrollment, kind=kind, actor=actor, at=at, reason=reason, data=data or {})


def _lock_enrollment(enrollment_id: int) -> Enrollment:
    try:
        return Enrollment.objects.select_for_update().select_related("patient__site").get(pk=enrollment_id)
    except Enrollment.DoesNotExist as exc:
        raise NotFound(f"enrollment {enrollment_id} not found") from exc


@transaction.atomic
def enrollment_apply(
    *,
    patient_id: int,
    pathway_slug: str,
    actor: User | None,
    coordinator: User | None = None,
    diagnosis_status: str = DiagnosisStatus.CONFIRMED,
    now: dt.datetime | None = None,
) -> Enrollment:
    """Apply the active version of a pathway to a patient: day-0 tasks now, a schedule for later work.

    `diagnosis_status` "confirmed" (the default) starts the treatment templates; "provisional" (a suspected
    case) starts only the workup templates, and enrollment_diagnosis_record later moves the enrollment on.
    Tasks land in role pools (nothing is assigned). A second live enrollment in the same pathway is refused.
    Raises InvalidInput (unknown pathway, diagnosis status or coordinator), NotPermitted, AlreadyEnrolled.
    """
    now = now or timezone.now()
    if diagnosis_status not in STAGE_FOR_DIAGNOSIS:
        raise InvalidInput(
            f"an enrollment starts as {DiagnosisStatus.PROVISIONAL} (suspected) or {DiagnosisStatus.CONFIRMED}",
            fields={"diagnosis_status": [f"use {DiagnosisStatus.PROVISIONAL} or {DiagnosisStatus.CONFIRMED}"]},
        )
    try:
        patient = Patient.objects.select_for_update().select_related("site").get(pk=patient_id)
    except Patient.DoesNotExist as exc:
        raise NotFound(f"patient {patient_id} not found") from exc
    if not can_enroll_patient(actor, patient):
        raise NotPermitted("only a coordinator at the patient's site can enrol patients")
    pathway = PathwayTemplate.objects.filter(slug=pathway_slug, status=TemplateStatus.ACTIVE).first()
    if pathway is None:
        raise InvalidInput(
            f"no active pathway {pathway_slug!r}; load it with manage.py load_pathways",
            fields={"pathway": ["no active version"]},
        )
    # A non-admin actor who names themself has just been found a coordinator at the patient's site.
    named_self = actor is not None and coordinator is not None and coordinator.pk == actor.pk and not is_admin(actor)
    if (
        coordinator is not None
        and not named_self
        and (Role.COORDINATOR not in coordinator.roles or not coordinator.sites.filter(pk=patient.site_id).exists())
    ):
        raise InvalidInput(
            "the coordinator must be a coordinator at the patient's site",
            fields={"coordinator": ["not a coordinator at this site"]},
        )
    if Enrollment.objects.filter(
        patient=patient, pathway_slug=pathway.slug, status__in=LIVE_ENROLLMENT_STATUSES
    ).exists():
        raise AlreadyEnrolled(f"patient {patient.pk} already has a live {pathway.slug} enrollment")
    # The patient's row lock makes a concurrent enrollment of the same patient wait for this one and then see
    # it above; the constraint stays the backstop. No savepoint: its IntegrityError ends the whole enrollment.
    try:
        enrollment = Enrollment.objects.create(
            patient=patient,
            template=pathway,
            pathway_slug=pathway.slug,
            coordinator=coordinator,
            enrolled_at=now,
            enrolled_by=actor,
            diagnosis_status=diagnosis_status,
            medications_at_enrollment=list(patient.risk_medications),
            risk_factors_at_enrollment=list(patient.risk_factors),
        )
    except IntegrityError as exc:
        raise AlreadyEnrolled(f"patient {patient.pk} already has a live {pathway.slug} enrollment") from exc

    applied, skipped = _start_stage(enrollment, patient, stage=enrollment_stage(diagnosis_status), actor=actor, now=now)
    if coordinator is not None:
        CareTeamMember.objects.create(enrollment=enrollment, user=coordinator, role=Role.COORDINATOR, period_start=now)
    _record(
        enrollment,
        EnrollmentEventKind.ENROLLED,
        actor=actor,
        at=now,
        data={
            "pathway": pathway.slug,
            "version": pathway.version,
            "diagnosis_status": diagnosis_status,
            "applied": applied,
            "not_applicable": skipped,
        },
    )
    return enrollment


def _start_stage(
    enrollment: Enrollment, patient: Patient, *, stage: str, actor: User | None, now: dt.datetime
) -> tuple[list[str], list[str]]:
    """Start the schedules of the pinned version's templates of one stage that apply to the patient, anchored
    at `now` (first-due days count from it). Returns the template codes (applied, not applicable)."""
    applied: list[str] = []
    skipped: list[str] = []
    scheduled: list[TaskTemplate] = []
    for template in stage_templates(pathway_id=enrollment.template_id, stage=stage):
        if template.recurrence_kind == RecurrenceKind.ON_TRIGGER:
            continue
        if not template_applies(template, patient, stage=stage):
            skipped.append(template.code)
            continue
        applied.append(template.code)
        scheduled.append(template)
    schedules_start(enrollment=enrollment, templates=scheduled, actor=actor, now=now)
    return applied, skipped


@transaction.atomic
def enrollment_diagnosis_record(
    *, enrollment_id: int, diagnosis_status: str, actor: User | None, reason: str = "", now: dt.datetime | None = None
) -> Enrollment:
    """Record the diagnosis of a suspected case (FHIR Condition.verificationStatus).

    "confirmed" starts the treatment templates that apply to the patient, their first-due days counted from
    now (the confirmation); open workup tasks stay open for the team to finish. "refuted" (ruled out, a reason
    required) completes the enrollment with that reason: open workup tasks are cancelled through the one
    transition function and schedules finish. Raises InvalidInput (status, reason), NotPermitted (not a
    coordinator at the patient's site), IllegalTransition (the diagnosis is not pending, or the enrollment is
    not active).
    """
    now = now or timezone.now()
    enrollment = _lock_enrollment(enrollment_id)
    _require_manager(actor, enrollment)
    if diagnosis_status not in (DiagnosisStatus.CONFIRMED, DiagnosisStatus.REFUTED):
        raise InvalidInput(
            f"record the diagnosis as {DiagnosisStatus.CONFIRMED} or {DiagnosisStatus.REFUTED}",
            fields={"diagnosis_status": [f"use {DiagnosisStatus.CONFIRMED} or {DiagnosisStatus.REFUTED}"]},
        )
    if enrollment.diagnosis_status != DiagnosisStatus.PROVISIONAL:
        raise IllegalTransition(f"the diagnosis is already {enrollment.diagnosis_status}, not suspected")
    if enrollment.status != EnrollmentStatus.ACTIVE:
        raise IllegalTransition(
            f"the enrollment is {enrollment.get_status_display().lower()}: its diagnosis cannot be recorded; "
            "resume it first"
        )
    reason = reason.strip()
    if diagnosis_status == DiagnosisStatus.REFUTED and not reason:
        raise InvalidInput("say why the diagnosis was ruled out", fields={"reason": ["required"]})
    enrollment.diagnosis_status, enrollment.diagnosis_recorded_at = diagnosis_status, now
    enrollment.save(update_fields=["diagnosis_status", "diagnosis_recorded_at"])
    if diagnosis_status == DiagnosisStatus.CONFIRMED:
        applied, skipped = _start_stage(
            enrollment, enrollment.patient, stage=PathwayStage.TREATMENT, actor=actor, now=now
        )
        _record(
            enrollment,
            EnrollmentEventKind.DIAGNOSIS_CONFIRMED,
            actor=actor,
            at=now,
            reason=reason,
            data={"applied": applied, "not_applicable": skipped},
        )
        return enrollment
    _record(enrollment, EnrollmentEventKind.DIAGNOSIS_REFUTED, actor=actor, at=now, reason=reason)
    return _end(
        enrollment.pk,
        actor=actor,
        reason=f"calciphylaxis ruled out: {reason}",
        status=EnrollmentStatus.COMPLETED,
        kind=EnrollmentEventKind.COMPLETED,
        now=now,
    )


def _require_manager(actor: User | None, enrollment: Enrollment) -> None:
    if not can_manage_enrollment(actor, enrollment):
        raise NotPermitted("only a coordinator at the patient's site can change this enrollment")


@transaction.atomic
def enrollment_hold(
    *, enrollment_id: int, actor: User | None, reason: str, now: dt.datetime | None = None
) -> Enrollment:
    """Put an active enrollment on hold: its schedules pause (nothing new materializes)."""
    now = now or timezone.now()
    enrollment = _lock_enrollment(enrollment_id)
    _require_manager(actor, enrollment)
    if enrollment.status != EnrollmentStatus.ACTIVE:
        raise IllegalTransition(f"an enrollment cannot go from {enrollment.status} to {EnrollmentStatus.ON_HOLD}")
    if not reason.strip():
        raise InvalidInput("a reason is required to put an enrollment on hold", fields={"reason": ["required"]})
    enrollment.status, enrollment.held_at = EnrollmentStatus.ON_HOLD, now
    enrollment.save(update_fields=["status", "held_at"])
    paused = schedules_pause(enrollment=enrollment, now=now)
    _record(enrollment, EnrollmentEventKind.HELD, actor=actor, at=now, reason=reason, data={"schedules_paused": paused})
    return enrollment


@transaction.atomic
def enrollment_resume(*, enrollment_id: int, actor: User | None, now: dt.datetime | None = None) -> Enrollment:
    """Resume a held enrollment: schedules continue from now; missed occurrences are recorded, not backfilled.

    Schedules held by a safety rule (pause_reason set) stay paused until a clinician resumes them.
    """
    now = now or timezone.now()
    enrollment = _lock_enrollment(enrollment_id)
    _require_manager(actor, enrollment)
    if enrollment.status != EnrollmentStatus.ON_HOLD:
        raise IllegalTransition(f"an enrollment cannot go from {enrollment.status} to {EnrollmentStatus.ACTIVE}")
    enrollment.status, enrollment.held_at = EnrollmentStatus.ACTIVE, None
    enrollment.save(update_fields=["status", "held_at"])
    missed: dict[str, int] = {}
    schedules = (
        Schedule.objects.select_for_update()
        .select_related("task_template", "enrollment__patient__site")
        .filter(enrollment=enrollment, status=ScheduleStatus.PAUSED, pause_reason="")
    )
    for schedule in schedules:
        count = schedule_resume(schedule, now=now)
        if count:
            missed[schedule.task_template.code] = count
    _record(enrollment, EnrollmentEventKind.RESUMED, actor=actor, at=now, data={"missed_occurrences": missed})
    return enrollment


def _end(
    enrollment_id: int, *, actor: User | None, reason: str, status: str, kind: str, now: dt.datetime | None
) -> Enrollment:
    now = now or timezone.now()
    enrollment = _lock_enrollment(enrollment_id)
    _require_manager(actor, enrollment)
    if enrollment.status not in LIVE_ENROLLMENT_STATUSES:
        raise IllegalTransition(f"an enrollment cannot go from {enrollment.status} to {status}")
    enrollment.status, enrollment.ended_at, enrollment.end_reason = status, now, reason
    enrollment.save(update_fields=["status", "ended_at", "end_reason"])
    open_ids = list(
        Task.objects.filter(enrollment=enrollment, status__in=OPEN_TASK_STATUSES).values_list("pk", flat=True)
    )
    cancel_reason = f"enrollment {status}: {reason}" if reason else f"enrollment {status}"
    for task_id in open_ids:
        # System actor: ending the enrollment (already permission-checked) cancels its work.
        task_transition(
            task_id=task_id,
            actor=None,
            expected_version=None,
            to_status=TaskStatus.CANCELLED,
            reason=cancel_reason,
            data={"by": actor.pk if actor else None},
            now=now,
        )
    finished = schedules_finish(enrollment=enrollment, now=now)
    _record(
        enrollment,
        kind,
        actor=actor,
        at=now,
        reason=reason,
        data={"tasks_cancelled": len(open_ids), "schedules_finished": finished},
    )
    return enrollment


@transaction.atomic
def enrollment_complete(
    *, enrollment_id: int, actor: User | None, reason: str = "", now: dt.datetime | None = None
) -> Enrollment:
    """Complete an enrollment: open tasks are cancelled with the reason, schedules finish."""
    return _end(
        enrollment_id,
        actor=actor,
        reason=reason,
        status=EnrollmentStatus.COMPLETED,
        kind=EnrollmentEventKind.COMPLETED,
        now=now,
    )


@transaction.atomic
def enrollment_revoke(
    *, enrollment_id: int, actor: User | None, reason: str, now: dt.datetime | None = None
) -> Enrollment:
    """Revoke an enrollment (ended early or in error): open tasks cancelled with the reason, schedules finish."""
    if not reason.strip():
        raise InvalidInput("a reason is required to revoke an enrollment", fields={"reason": ["required"]})
    return _end(
        enrollment_id,
        actor=actor,
        reason=reason,
        status=EnrollmentStatus.REVOKED,
        kind=EnrollmentEventKind.REVOKED,
        now=now,
    )


@transaction.atomic
def care_team_add(
    *, enrollment_id: int, user: User, role: str, actor: User | None, now: dt.datetime | None = None
) -> CareTeamMember:
    """Add a user to an enrollment's care team in one of the roles they hold."""
    now = now or timezone.now()
    enrollment = _lock_enrollment(enrollment_id)
    _require_manager(actor, enrollment)
    if enrollment.status not in LIVE_ENROLLMENT_STATUSES:
        raise IllegalTransition(f"a {enrollment.status} enrollment's care team cannot change")
    if role not in SPECIALIST_ROLES and role != Role.COORDINATOR:
        raise InvalidInput(f"{role!r} is not a care-team role", fields={"role": ["not a care-team role"]})
    if role not in (user.roles or []) or not user.is_active:
        raise InvalidInput(f"the user does not hold the {role} role", fields={"role": ["user lacks this role"]})
    if not user.sites.filter(pk=enrollment.patient.site_id).exists():
        raise InvalidInput("the user does not work at this patient's site", fields={"user": ["not at this site"]})
    if CareTeamMember.objects.filter(enrollment=enrollment, user=user, role=role, period_end__isnull=True).exists():
        raise Conflict(f"user {user.pk} is already on this care team as {role}")
    member = CareTeamMember.objects.create(enrollment=enrollment, user=user, role=role, period_start=now)
    _record(
        enrollment,
        EnrollmentEventKind.CARE_TEAM_ADDED,
        actor=actor,
        at=now,
        data={"member": member.pk, "user": user.pk, "role": role},
    )
    return member


@transaction.atomic
def care_team_end(*, membership_id: int, actor: User | None, now: dt.datetime | None = None) -> CareTeamMember:
    """End a care-team membership (the period closes; history is kept)."""
    now = now or timezone.now()
    try:
        member = CareTeamMember.objects.select_for_update().get(pk=membership_id)
    except CareTeamMember.DoesNotExist as exc:
        raise NotFound(f"care team membership {membership_id} not found") from exc
    enrollment = _lock_enrollment(member.enrollment_id)
    _require_manager(actor, enrollment)
    if member.period_end is not None:
        raise IllegalTransition("this membership has already ended")
    member.period_end = now
    member.save(update_fields=["period_end"])
    _record(
        enrollment,
        EnrollmentEventKind.CARE_TEAM_ENDED,
        actor=actor,
        at=now,
        data={"member": member.pk, "user": member.user_id, "role": member.role},
    )
    return member


# --- releasing a safety hold ---------------------------------------------------------------------------


def _may_release(actor: User | None, enrollment: Enrollment) -> bool:
    if actor is None or is_admin(actor) or can_manage_enrollment(actor, enrollment):
        return True
    # The nephrologist on the team decides when a held treatment can restart.
    return CareTeamMember.objects.filter(
        enrollment=enrollment, user=actor, role=Role.NEPHROLOGY, period_end__isnull=True
    ).exists()


@transaction.atomic
def schedule_release_hold(
    *, schedule_id: int, actor: User | None, reason: str = "", now: dt.datetime | None = None
) -> Schedule:
    """A clinician releases a schedule a safety rule held: it continues from now (missed sessions are not given).

    Held occurrences still ahead are resumed; those whose window passed during the hold are cancelled.
    """
    now = now or timezone.now()
    schedule = schedule_lock(schedule_id)
    enrollment = schedule.enrollment
    if not _may_release(actor, enrollment):
        raise NotPermitted("only the team's nephrologist or a coordinator can release a safety hold")
    if not schedule.pause_reason:
        raise IllegalTransition("this schedule is not held by a safety rule")
    held_by = schedule.pause_reason
    if enrollment.status == EnrollmentStatus.ON_HOLD:
        # The enrollment's own hold still applies; enrollment_resume will restart it.
        schedule_clear_safety_hold(schedule=schedule)
    else:
        schedule_resume(schedule, now=now)
    held_ids = [
        pk
        for data in RuleFiring.objects.filter(schedule=schedule, outcome=RuleOutcome.SCHEDULE_HELD).values_list(
            "data", flat=True
        )
        for pk in data.get("held_tasks", [])
    ]
    for task in Task.objects.filter(pk__in=held_ids, status=TaskStatus.ON_HOLD):
        if task.due_at > now:
            task_resume(task_id=task.pk, actor=None, expected_version=None, now=now)
        else:
            task_transition(
                task_id=task.pk,
                to_status=TaskStatus.CANCELLED,
                actor=None,
                expected_version=None,
                reason=f"its time passed while {held_by}",
                now=now,
            )
    logger.info("safety hold released: schedule=%s by user=%s", schedule.pk, actor.pk if actor else None)
    return schedule
