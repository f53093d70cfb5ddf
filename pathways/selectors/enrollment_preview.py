"""What enrolling a patient would create, without creating it: the enrollment preview coordinators confirm.

It walks the active pathway version the way pathways.services.enrollment.enrollment_apply does (the same
applicability check, the same recurrence engine, the same anchor), so the preview cannot promise other work than
enrolment then makes; tests/web/test_coord_enrol.py compares the two.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from pathways.choices import LIVE_ENROLLMENT_STATUSES, PathwayStage, Prong, RecurrenceKind, Role, TemplateStatus
from pathways.domain.applicability import template_applies
from pathways.domain.recurrence import PatientCalendar, RecurrenceSpec, first_occurrence, occurrences_between
from pathways.models import Enrollment, PathwayTemplate, Patient, TaskTemplate
from pathways.selectors.templates import stage_templates

ROLE_LABELS = dict(Role.choices)
PRONG_LABELS = dict(Prong.choices)
KIND_LABELS = dict(RecurrenceKind.choices)
PREVIEW_DAYS = 14
PREVIEW_OCCURRENCES = 8


@dataclass(frozen=True)
class PreviewTask:
    """One task enrolment creates at once (day 0): available now, due after the template's window."""

    code: str
    title: str
    role: str
    prong: str
    priority: str
    available_at: dt.datetime
    due_at: dt.datetime

    @property
    def role_label(self) -> str:
        return str(ROLE_LABELS.get(self.role, self.role))

    @property
    def prong_label(self) -> str:
        return str(PRONG_LABELS.get(self.prong, self.prong))


@dataclass(frozen=True)
class PreviewSchedule:
    """One schedule enrolment creates, with its first occurrences (UTC) inside the preview window."""

    code: str
    title: str
    role: str
    prong: str
    kind: str
    first_at: dt.datetime | None
    occurrences: list[dt.datetime]
    hours_after_completion: int | None = None
    timing: str = ""  # RecurrenceSpec.describe(): "every 7 days", "Mon, Wed, Fri at 09:00", ...

    @property
    def role_label(self) -> str:
        return str(ROLE_LABELS.get(self.role, self.role))

    @property
    def prong_label(self) -> str:
        return str(PRONG_LABELS.get(self.prong, self.prong))

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))


@dataclass
class EnrollmentPreview:
    """The whole preview for one patient and pathway, as of `now`."""

    pathway: PathwayTemplate
    now: dt.datetime
    until: dt.datetime
    day0: list[PreviewTask] = field(default_factory=list)
    schedules: list[PreviewSchedule] = field(default_factory=list)
    not_applicable: list[TaskTemplate] = field(default_factory=list)
    on_trigger: list[TaskTemplate] = field(default_factory=list)
    live_enrollment: Enrollment | None = None


def enrollment_preview(
    *,
    patient: Patient,
    pathway_slug: str,
    now: dt.datetime | None = None,
    days: int = PREVIEW_DAYS,
    stage: str = PathwayStage.TREATMENT,
) -> EnrollmentPreview | None:
    """What enrollment_apply would create for `patient` (site loaded) from the active `pathway_slug` as of `now`.

    Returns None when the pathway has no active version. Day-0 tasks are the occurrences due at `now` (as
    enrollment_apply materializes until now); each schedule lists at most PREVIEW_OCCURRENCES occurrences in
    [now, now + days). Only the templates of `stage` are previewed (treatment: enrolment as confirmed; workup:
    a suspected case), as enrollment_apply starts only those. `live_enrollment` is set when the patient is
    already enrolled (enrolment would be refused).
    Three queries whatever the pathway's size (two once the version's templates are kept, selectors.templates).
    """
    now = now or timezone.now()
    pathway = PathwayTemplate.objects.filter(slug=pathway_slug, status=TemplateStatus.ACTIVE).first()
    if pathway is None:
        return None
    preview = EnrollmentPreview(pathway=pathway, now=now, until=now + dt.timedelta(days=days))
    preview.live_enrollment = Enrollment.objects.filter(
        patient=patient, pathway_slug=pathway.slug, status__in=LIVE_ENROLLMENT_STATUSES
    ).first()
    cal = PatientCalendar.for_patient(patient)
    for template in stage_templates(pathway_id=pathway.pk, stage=stage):
        if template.recurrence_kind == RecurrenceKind.ON_TRIGGER:
            preview.on_trigger.append(template)
            continue
        if not template_applies(template, patient, stage=stage):
            preview.not_applicable.append(template)
            continue
        spec = RecurrenceSpec.for_template(template)
        first = first_occurrence(spec, anchor=now, cal=cal)
        if first is not None and first <= now:
            preview.day0.append(
                PreviewTask(
                    code=template.code,
                    title=template.title,
                    role=template.role,
                    prong=template.prong,
                    priority=template.priority,
                    available_at=first,
                    due_at=first + dt.timedelta(hours=template.due_within_hours),
                )
            )
        if spec.kind in (RecurrenceKind.ONCE, RecurrenceKind.AFTER_COMPLETION):
            # One-offs happen once; after-completion work repeats from each completion, unknowable ahead.
            occurrences = [first] if first is not None and first < preview.until else []
        else:
            # From the first occurrence: rrule drops microseconds, so a day-0 occurrence can sit just before `now`.
            start = min(first, now) if first is not None else now
            occurrences = occurrences_between(
                spec, anchor=now, cal=cal, start=start, end=preview.until, limit=PREVIEW_OCCURRENCES
            )
        preview.schedules.append(
            PreviewSchedule(
                code=template.code,
                title=template.title,
                role=template.role,
                prong=template.prong,
                kind=template.recurrence_kind,
                first_at=first,
                occurrences=occurrences,
                hours_after_completion=spec.hours_after_completion,
                timing=spec.describe(),
            )
        )
    return preview
