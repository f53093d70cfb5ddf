"""Reads for pathway version migration: the diff between two versions, which enrollments a migration would
move, and the dry-run plan for one enrollment (what services/migration.py then applies, exactly)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from pathways.choices import (
    LIVE_ENROLLMENT_STATUSES,
    OPEN_TASK_STATUSES,
    EnrollmentStatus,
    RecurrenceKind,
    ScheduleStatus,
    TemplateStatus,
)
from pathways.domain.applicability import enrollment_stage, template_applies
from pathways.domain.recurrence import PatientCalendar, RecurrenceSpec, first_occurrence
from pathways.domain.versions import RULE_FIELDS, TEMPLATE_FIELDS, PathwayDiff, pathway_diff, replanned_next_due
from pathways.errors import InvalidInput
from pathways.models import Enrollment, PathwayTemplate, Rule, Schedule, Task, TaskTemplate, User
from pathways.selectors.access import scope_enrollments

# The statuses a migration of many moves by default; on-hold and ended enrollments only when asked.
ENDED_ENROLLMENT_STATUSES = (EnrollmentStatus.COMPLETED, EnrollmentStatus.REVOKED)


@dataclass(frozen=True)
class VersionPair:
    """Two versions of one pathway, the new version's task templates by code, and the diff between them."""

    old: PathwayTemplate
    new: PathwayTemplate
    new_templates: dict[str, TaskTemplate]
    diff: PathwayDiff


def pathway_version_get(*, slug: str, version: int, field_name: str = "version") -> PathwayTemplate:
    """One version of a pathway; InvalidInput (naming `field_name`) when there is no such version."""
    pathway = PathwayTemplate.objects.filter(slug=slug, version=version).first()
    if pathway is None:
        raise InvalidInput(f"pathway {slug!r} has no version {version}", fields={field_name: ["no such version"]})
    return pathway


def _templates(pathway: PathwayTemplate) -> list[TaskTemplate]:
    return list(TaskTemplate.objects.filter(pathway=pathway).order_by("position"))


def _fields(rows: Iterable[Any], names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Field values by code; a template's recurrence as the content file writes it, {"kind": ..., ...}."""

    def value(row: Any, name: str) -> Any:
        if name == "recurrence" and isinstance(row, TaskTemplate):
            return {"kind": row.recurrence_kind, **row.recurrence}
        return getattr(row, name)

    return {row.code: {name: value(row, name) for name in names} for row in rows}


def _diff(old: PathwayTemplate | None, new: PathwayTemplate, new_templates: list[TaskTemplate]) -> PathwayDiff:
    old_templates = _templates(old) if old else []
    return pathway_diff(
        slug=new.slug,
        from_version=old.version if old else 0,
        to_version=new.version,
        old_templates=_fields(old_templates, TEMPLATE_FIELDS),
        new_templates=_fields(new_templates, TEMPLATE_FIELDS),
        old_rules=_fields(Rule.objects.filter(pathway=old).order_by("position") if old else [], RULE_FIELDS),
        new_rules=_fields(Rule.objects.filter(pathway=new).order_by("position"), RULE_FIELDS),
    )


def pathway_versions_compare(*, slug: str, from_version: int, to_version: int) -> VersionPair:
    """Load two versions of `slug` and diff them (six queries). InvalidInput for a missing version or the same
    version twice (fields `from_version` / `to_version`)."""
    if from_version == to_version:
        raise InvalidInput("the two versions are the same", fields={"to_version": ["must differ from from_version"]})
    old = pathway_version_get(slug=slug, version=from_version, field_name="from_version")
    new = pathway_version_get(slug=slug, version=to_version, field_name="to_version")
    new_templates = _templates(new)
    return VersionPair(
        old=old, new=new, new_templates={t.code: t for t in new_templates}, diff=_diff(old, new, new_templates)
    )


def pathway_version_diff(*, pathway: PathwayTemplate, from_version: int | None = None) -> PathwayDiff:
    """What `pathway` (one version) changes relative to `from_version` of the same pathway, by default the
    version before it; the first version, with nothing before it, lists everything as added (from_version 0).
    InvalidInput (field `from_version`) for a missing or the same version."""
    if from_version is None:
        old = PathwayTemplate.objects.filter(slug=pathway.slug, version__lt=pathway.version).order_by("-version")
        return _diff(old.first(), pathway, _templates(pathway))
    if from_version == pathway.version:
        raise InvalidInput("the two versions are the same", fields={"from_version": ["must differ from this version"]})
    old_version = pathway_version_get(slug=pathway.slug, version=from_version, field_name="from_version")
    return _diff(old_version, pathway, _templates(pathway))


class PairCache:
    """The version pairs a migration of many needs, each loaded once per (slug, from, to)."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, int, int], VersionPair] = {}

    def get(self, *, slug: str, from_version: int, to_version: int) -> VersionPair:
        key = (slug, from_version, to_version)
        if key not in self._pairs:
            self._pairs[key] = pathway_versions_compare(slug=slug, from_version=from_version, to_version=to_version)
        return self._pairs[key]


# --- the plan for one enrollment ------------------------------------------------------------------------


@dataclass
class MigrationPlan:
    """What moving one enrollment to another version does (the dry run, and the record of the run).

    Each list holds JSON-ready dicts; times are ISO 8601 UTC:
    - tasks_created: {"template", "available_at", "due_at"}: day-0 work of templates started now;
    - tasks_cancelled: {"task", "template", "status", "reason"}: open tasks of templates that end;
    - schedules_started: {"template", "next_due_at"}: new (or newly applicable) templates, from now;
    - schedules_replanned: {"template", "schedule", "next_due_at": {"old", "new"}, "finished"}: changed timing;
    - schedules_ended: {"template", "schedule", "reason"}: removed or no longer applicable templates.
    `open_tasks_kept` counts the open tasks left exactly as they are.
    """

    enrollment_id: int
    from_version: int
    to_version: int
    tasks_created: list[dict[str, Any]] = field(default_factory=list)
    tasks_cancelled: list[dict[str, Any]] = field(default_factory=list)
    schedules_started: list[dict[str, Any]] = field(default_factory=list)
    schedules_replanned: list[dict[str, Any]] = field(default_factory=list)
    schedules_ended: list[dict[str, Any]] = field(default_factory=list)
    open_tasks_kept: int = 0

    @property
    def is_move(self) -> bool:
        """False for the plan of an enrollment already on the target version (nothing to do)."""
        return self.from_version != self.to_version

    def as_dict(self) -> dict[str, Any]:
        return {
            "enrollment": self.enrollment_id,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "tasks_created": self.tasks_created,
            "tasks_cancelled": self.tasks_cancelled,
            "schedules_started": self.schedules_started,
            "schedules_replanned": self.schedules_replanned,
            "schedules_ended": self.schedules_ended,
            "open_tasks_kept": self.open_tasks_kept,
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat() if moment else None


@dataclass(frozen=True)
class OpenTask:
    """An open task as the plan needs it."""

    pk: int
    template_code: str | None
    status: str


def enrollment_migration_plan(
    *,
    enrollment: Enrollment,
    pair: VersionPair,
    schedules: Sequence[Schedule],
    open_tasks: Sequence[OpenTask],
    now: dt.datetime,
) -> MigrationPlan:
    """The plan for moving `enrollment` (on `pair.old`) to `pair.new` at `now`; no database access.

    `schedules` are the enrollment's schedules with `task_template` loaded; `enrollment.patient.site` must be
    loaded. The rules (docs/pathway-content.md, "Moving enrollments to a new version"):
    - templates unchanged, or changed in fields other than timing and applicability: open tasks stay, the
      schedule follows the new template from now on;
    - changed timing (first_due, recurrence): the schedule is re-planned from `now` (domain.versions);
    - removed: open tasks cancelled with the reason "removed in vN", the schedule ends;
    - applicability changed so that it no longer holds for the patient: the same, "not applicable in vN";
    - added (or newly applicable, or turned from on_trigger into a scheduled kind): a schedule starts with its
      first-due rule counted from `now`; occurrences due at `now` are created at once (on hold: paused);
    - ended enrollments (completed, revoked) only change their pinned version.
    """
    new_version = pair.new.version
    plan = MigrationPlan(enrollment_id=enrollment.pk, from_version=pair.old.version, to_version=new_version)
    if enrollment.status not in LIVE_ENROLLMENT_STATUSES:
        return plan
    patient = enrollment.patient
    # Templates start only in the enrollment's own stage: moving a confirmed case to a version that added a
    # workup stage (issue 16) starts no workup, and a suspected case gets no treatment work before confirmation.
    stage = enrollment_stage(enrollment.diagnosis_status)
    cal = PatientCalendar.for_patient(patient)
    diff = pair.diff
    changes = {c.code: c for c in diff.templates_changed}
    by_code = {s.task_template.code: s for s in schedules}
    ending: dict[str, str] = {code: f"removed in v{new_version}" for code in diff.templates_removed}

    for code, template in pair.new_templates.items():
        spec = RecurrenceSpec.for_template(template)
        schedule = by_code.get(code)
        change = changes.get(code)
        applies = template_applies(template, patient, stage=stage)
        if code in diff.templates_added:
            starts = spec.is_scheduled and applies
        elif change is None:
            continue
        elif change.applicability_changed and not applies:
            ending[code] = f"not applicable in v{new_version}"
            continue
        elif schedule is None:
            was_on_trigger = "recurrence" in change.fields and (
                change.fields["recurrence"].old.get("kind") == RecurrenceKind.ON_TRIGGER
            )
            starts = spec.is_scheduled and applies and (change.applicability_changed or was_on_trigger)
        else:
            starts = False
            if change.timing_changed and schedule.status != ScheduleStatus.FINISHED:
                replanned = replanned_next_due(
                    spec,
                    anchor=schedule.anchor_at,
                    cal=cal,
                    now=now,
                    made=schedule.occurrences_made,
                    next_due_at=schedule.next_due_at,
                    last_completed_at=schedule.last_completed_at,
                )
                plan.schedules_replanned.append(
                    {
                        "template": code,
                        "schedule": schedule.pk,
                        "next_due_at": {"old": _iso(schedule.next_due_at), "new": _iso(replanned.next_due_at)},
                        "finished": replanned.finished,
                    }
                )
        if starts and schedule is None:
            first = first_occurrence(spec, anchor=now, cal=cal)
            plan.schedules_started.append({"template": code, "next_due_at": _iso(first)})
            if first is not None and first <= now and enrollment.status == EnrollmentStatus.ACTIVE:
                due = first + dt.timedelta(hours=template.due_within_hours)
                plan.tasks_created.append({"template": code, "available_at": _iso(first), "due_at": _iso(due)})

    for code, reason in ending.items():
        schedule = by_code.get(code)
        if schedule is not None and schedule.status != ScheduleStatus.FINISHED:
            plan.schedules_ended.append({"template": code, "schedule": schedule.pk, "reason": reason})
    for task in open_tasks:
        if task.template_code in ending:
            reason = ending[task.template_code]
            plan.tasks_cancelled.append(
                {"task": task.pk, "template": task.template_code, "status": task.status, "reason": reason}
            )
        else:
            plan.open_tasks_kept += 1
    return plan


def enrollments_open_tasks(enrollment_ids: Sequence[int]) -> dict[int, list[OpenTask]]:
    """The open tasks of these enrollments with their template codes, by enrollment, oldest first (one query)."""
    rows = (
        Task.objects.filter(enrollment_id__in=enrollment_ids, status__in=OPEN_TASK_STATUSES)
        .order_by("pk")
        .values_list("enrollment_id", "pk", "template__code", "status")
    )
    found: dict[int, list[OpenTask]] = {}
    for enrollment_id, pk, code, status in rows:
        found.setdefault(enrollment_id, []).append(OpenTask(pk, code, status))
    return found


def enrollments_schedules(enrollments: Sequence[Enrollment], *, lock: bool = False) -> dict[int, list[Schedule]]:
    """The schedules of these enrollments with their templates, by enrollment (one query; `lock` takes their
    row locks). Each schedule's `enrollment` is the given instance (its patient and site already loaded)."""
    by_id = {e.pk: e for e in enrollments}
    qs = Schedule.objects.select_related("task_template").filter(enrollment_id__in=by_id).order_by("pk")
    if lock:
        qs = qs.select_for_update(of=("self",))
    found: dict[int, list[Schedule]] = {}
    for schedule in qs:
        schedule.enrollment = by_id[schedule.enrollment_id]
        found.setdefault(schedule.enrollment_id, []).append(schedule)
    return found


def enrollment_migration_preview_to(
    *, enrollment: Enrollment, to_version: int | None, now: dt.datetime
) -> MigrationPlan:
    """The dry-run plan for moving one enrollment to `to_version` (by default its pathway's active version).
    Already on that version: a plan that changes nothing. InvalidInput (field `to_version`) for a missing one."""
    if to_version is None:
        active = PathwayTemplate.objects.filter(slug=enrollment.pathway_slug, status=TemplateStatus.ACTIVE).first()
        to_version = active.version if active else enrollment.template.version
    if to_version == enrollment.template.version:
        return MigrationPlan(enrollment_id=enrollment.pk, from_version=to_version, to_version=to_version)
    pair = pathway_versions_compare(
        slug=enrollment.pathway_slug, from_version=enrollment.template.version, to_version=to_version
    )
    return enrollment_migration_preview(enrollment=enrollment, pair=pair, now=now)


def enrollment_migration_preview(*, enrollment: Enrollment, pair: VersionPair, now: dt.datetime) -> MigrationPlan:
    """The dry-run plan for one enrollment, read without locks (the API's and the commands' dry run)."""
    return enrollment_migration_plan(
        enrollment=enrollment,
        pair=pair,
        schedules=enrollments_schedules([enrollment]).get(enrollment.pk, []),
        open_tasks=enrollments_open_tasks([enrollment.pk]).get(enrollment.pk, []),
        now=now,
    )


def enrollments_migration_previews(*, ids: Sequence[int], to_version: int, now: dt.datetime) -> list[MigrationPlan]:
    """Dry-run plans for the enrollments `ids` (oldest first), each against its own version."""
    pairs = PairCache()
    enrollments = Enrollment.objects.select_related("patient__site", "template").filter(pk__in=ids).order_by("pk")
    return [
        enrollment_migration_preview(
            enrollment=enrollment,
            pair=pairs.get(
                slug=enrollment.pathway_slug, from_version=enrollment.template.version, to_version=to_version
            ),
            now=now,
        )
        for enrollment in enrollments
    ]


# --- which enrollments a migration of many moves ----------------------------------------------------------


@dataclass(frozen=True)
class MigrationSelection:
    """The enrollments a migration of many would move (ids, oldest first), and those it leaves out and why."""

    ids: list[int]
    skipped_on_hold: int
    skipped_ended: int


def enrollments_for_migration(
    *,
    user: User | None,
    slug: str,
    to_version: int,
    from_version: int | None = None,
    site_code: str | None = None,
    include_on_hold: bool = False,
    include_ended: bool = False,
) -> MigrationSelection:
    """Enrollments in `slug` not yet on `to_version` (only those on `from_version` when given, at `site_code`
    when given), within `user`'s scope (None: the system, every site). Active ones always; on-hold and ended
    (completed, revoked) ones only when asked, else counted as skipped. Already migrated ones are not listed,
    so re-running after an interruption carries on where it stopped. InvalidInput if `to_version` does not
    exist."""
    pathway_version_get(slug=slug, version=to_version, field_name="to_version")
    qs: QuerySet[Enrollment] = (Enrollment.objects.all() if user is None else scope_enrollments(user)).filter(
        pathway_slug=slug
    )
    qs = qs.exclude(template__version=to_version)
    if from_version is not None:
        qs = qs.filter(template__version=from_version)
    if site_code:
        qs = qs.filter(patient__site__code=site_code)
    statuses = [EnrollmentStatus.ACTIVE]
    if include_on_hold:
        statuses.append(EnrollmentStatus.ON_HOLD)
    if include_ended:
        statuses += ENDED_ENROLLMENT_STATUSES
    skipped_on_hold = 0 if include_on_hold else qs.filter(status=EnrollmentStatus.ON_HOLD).count()
    skipped_ended = 0 if include_ended else qs.filter(status__in=ENDED_ENROLLMENT_STATUSES).count()
    ids = list(qs.filter(status__in=statuses).order_by("pk").values_list("pk", flat=True))
    return MigrationSelection(ids=ids, skipped_on_hold=skipped_on_hold, skipped_ended=skipped_ended)
