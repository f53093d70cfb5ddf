"""Moving enrollments to another version of their pathway (Camunda's process-instance migration is the
model: https://docs.camunda.io/docs/components/concepts/process-instance-migration/).

The plan comes from selectors/migration.py (the same function serves the dry run); this module applies it,
one enrollment per transaction, under the enrollment's row lock, so a migration of many can stop anywhere and
be run again: an enrollment already on the target version is never moved twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from pathways.choices import EnrollmentEventKind, EnrollmentStatus, TaskStatus
from pathways.errors import Conflict, DomainError, NotFound, NotPermitted
from pathways.models import Enrollment, EnrollmentEvent, Schedule, User
from pathways.selectors.access import can_manage_enrollment
from pathways.selectors.migration import (
    ENDED_ENROLLMENT_STATUSES,
    MigrationPlan,
    PairCache,
    VersionPair,
    enrollment_migration_plan,
    enrollment_open_tasks,
    enrollment_schedules,
    enrollments_for_migration,
)
from pathways.services.schedules import schedules_finish, schedules_replan, schedules_start
from pathways.services.tasks import task_transition

logger = logging.getLogger(__name__)


class AlreadyOnVersion(Conflict):
    """The enrollment is already on the target version (a migration re-run finds it done)."""

    code = "already_on_version"


def _lock(enrollment_id: int) -> Enrollment:
    try:
        return (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("patient__site", "template")
            .get(pk=enrollment_id)
        )
    except Enrollment.DoesNotExist as exc:
        raise NotFound(f"enrollment {enrollment_id} not found") from exc


@transaction.atomic
def enrollment_migrate(
    *,
    enrollment_id: int,
    to_version: int,
    actor: User | None,
    include_on_hold: bool = False,
    include_ended: bool = False,
    now: dt.datetime | None = None,
    pairs: PairCache | None = None,
) -> MigrationPlan:
    """Move one enrollment to version `to_version` of its pathway and return the plan it applied.

    All or nothing, under the enrollment's row lock. Open tasks of ending templates are cancelled through the
    one transition function (services/tasks.py), changed schedules re-planned and new ones started
    (services/schedules.py), the pinned version changed, and a `migrated` EnrollmentEvent records both
    versions and the plan. Raises NotPermitted (not a coordinator at the patient's site, nor an admin),
    InvalidInput (no such version), AlreadyOnVersion (409; nothing to do), Conflict (on hold or ended and not
    included).
    """
    now = now or timezone.now()
    enrollment = _lock(enrollment_id)
    if not can_manage_enrollment(actor, enrollment):
        raise NotPermitted("only a coordinator at the patient's site can move this enrollment to another version")
    if enrollment.template.version == to_version:
        raise AlreadyOnVersion(f"enrollment {enrollment.pk} is already on version {to_version}")
    if enrollment.status == EnrollmentStatus.ON_HOLD and not include_on_hold:
        raise Conflict(f"enrollment {enrollment.pk} is on hold; include on-hold enrollments to move it")
    if enrollment.status in ENDED_ENROLLMENT_STATUSES and not include_ended:
        raise Conflict(f"enrollment {enrollment.pk} is {enrollment.status}; include ended enrollments to move it")
    pair = (pairs or PairCache()).get(
        slug=enrollment.pathway_slug, from_version=enrollment.template.version, to_version=to_version
    )
    schedules = enrollment_schedules(enrollment, lock=True)
    plan = enrollment_migration_plan(
        enrollment=enrollment, pair=pair, schedules=schedules, open_tasks=enrollment_open_tasks(enrollment), now=now
    )
    _apply(enrollment, plan, pair=pair, schedules=schedules, actor=actor, now=now)
    return plan


def _apply(
    enrollment: Enrollment,
    plan: MigrationPlan,
    *,
    pair: VersionPair,
    schedules: list[Schedule],
    actor: User | None,
    now: dt.datetime,
) -> None:
    versions = {"from_version": plan.from_version, "to_version": plan.to_version}
    for item in plan.tasks_cancelled:
        # System actor: the migration (already permission-checked) ends the template's work.
        task_transition(
            task_id=item["task"],
            to_status=TaskStatus.CANCELLED,
            actor=None,
            expected_version=None,
            reason=item["reason"],
            data={"migration": versions, "by": actor.pk if actor else None},
            now=now,
        )
    ended = {item["schedule"] for item in plan.schedules_ended}
    schedules_finish(enrollment=enrollment, now=now, schedule_ids=ended)
    replanned = {item["template"] for item in plan.schedules_replanned}
    schedules_replan(
        moves=[
            (s, pair.new_templates[s.task_template.code], s.task_template.code in replanned)
            for s in schedules
            if s.pk not in ended and s.task_template.code in pair.new_templates
        ],
        now=now,
    )
    schedules_start(
        enrollment=enrollment,
        templates=[pair.new_templates[item["template"]] for item in plan.schedules_started],
        actor=actor,
        now=now,
        paused=enrollment.status == EnrollmentStatus.ON_HOLD,
    )
    enrollment.template = pair.new
    enrollment.save(update_fields=["template"])
    EnrollmentEvent.objects.create(
        enrollment=enrollment,
        kind=EnrollmentEventKind.MIGRATED,
        actor=actor,
        at=now,
        reason=f"moved from v{plan.from_version} to v{plan.to_version}",
        data={**versions, "plan": plan.as_dict()},
    )


# --- many enrollments -------------------------------------------------------------------------------------


@dataclass
class MigrationRun:
    """What a migration of many did: counts, the enrollments that failed (id, message), and what it left out."""

    selected: int = 0
    migrated: int = 0
    already: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    skipped_on_hold: int = 0
    skipped_ended: int = 0
    remaining: int = 0
    plans: list[MigrationPlan] = field(default_factory=list)


def enrollments_migrate(
    *,
    slug: str,
    to_version: int,
    actor: User | None,
    from_version: int | None = None,
    site_code: str | None = None,
    include_on_hold: bool = False,
    include_ended: bool = False,
    limit: int | None = None,
    keep_plans: bool = False,
    progress: Callable[[MigrationRun], None] | None = None,
) -> MigrationRun:
    """Move every selected enrollment (selectors/migration.py `enrollments_for_migration`) to `to_version`,
    one transaction each, oldest first, and report.

    Resumable: an interrupted run is simply run again; enrollments already moved are no longer selected, and
    one moved meanwhile by a concurrent run is found on the target version under its lock and counted as
    `already`, never moved twice. `limit` moves at most that many (the rest are counted as `remaining`).
    `progress` is called after each enrollment. A failing enrollment is rolled back alone and listed.
    """
    selection = enrollments_for_migration(
        user=actor,
        slug=slug,
        to_version=to_version,
        from_version=from_version,
        site_code=site_code,
        include_on_hold=include_on_hold,
        include_ended=include_ended,
    )
    ids = selection.ids if limit is None else selection.ids[:limit]
    run = MigrationRun(
        selected=len(selection.ids),
        skipped_on_hold=selection.skipped_on_hold,
        skipped_ended=selection.skipped_ended,
        remaining=len(selection.ids),
    )
    pairs = PairCache()
    for enrollment_id in ids:
        try:
            plan = enrollment_migrate(
                enrollment_id=enrollment_id,
                to_version=to_version,
                actor=actor,
                include_on_hold=include_on_hold,
                include_ended=include_ended,
                pairs=pairs,
            )
        except AlreadyOnVersion:
            run.already += 1
        except DomainError as exc:
            logger.warning("enrollment %s not migrated: %s", enrollment_id, exc.code)
            run.failed.append((enrollment_id, exc.message))
        else:
            run.migrated += 1
            if keep_plans:
                run.plans.append(plan)
        run.remaining -= 1
        if progress is not None:
            progress(run)
    return run
