"""Moving enrollments to another version of their pathway (Camunda's process-instance migration is the
model: https://docs.camunda.io/docs/components/concepts/process-instance-migration/).

The plan comes from selectors/migration.py (the same function serves the dry run); this module applies it
under each enrollment's row lock, in batches (one transaction per batch, bulk writes), so a migration of many
can stop anywhere and be run again: an enrollment already on the target version is never moved twice. Moving
one enrollment is a batch of one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from pathways.choices import EnrollmentEventKind, EnrollmentStatus, TaskStatus, TemplateStatus
from pathways.errors import Conflict, DomainError, InvalidInput, NotFound, NotPermitted
from pathways.models import Enrollment, EnrollmentEvent, Schedule, TaskTemplate, User
from pathways.selectors.access import can_manage_enrollment
from pathways.selectors.migration import (
    ENDED_ENROLLMENT_STATUSES,
    MigrationPlan,
    PairCache,
    VersionPair,
    enrollment_migration_plan,
    enrollments_for_migration,
    enrollments_open_tasks,
    enrollments_schedules,
)
from pathways.services.schedules import schedules_finish_by_id, schedules_replan, schedules_start_many
from pathways.services.tasks import task_transition

logger = logging.getLogger(__name__)


class AlreadyOnVersion(Conflict):
    """The enrollment is already on the target version (a migration re-run finds it done)."""

    code = "already_on_version"


@dataclass
class _Move:
    """One enrollment in a migration transaction: its locked rows, its plan, or why it does not move."""

    enrollment: Enrollment
    pair: VersionPair | None = None
    schedules: list[Schedule] = field(default_factory=list)
    plan: MigrationPlan | None = None
    refused: DomainError | None = None


def _refusal(
    enrollment: Enrollment, *, to_version: int, actor: User | None, include_on_hold: bool, include_ended: bool
) -> DomainError | None:
    if not can_manage_enrollment(actor, enrollment):
        return NotPermitted("only a coordinator at the patient's site can move this enrollment to another version")
    if enrollment.template.version == to_version:
        return AlreadyOnVersion(f"enrollment {enrollment.pk} is already on version {to_version}")
    if enrollment.status == EnrollmentStatus.ON_HOLD and not include_on_hold:
        return Conflict(f"enrollment {enrollment.pk} is on hold; include on-hold enrollments to move it")
    if enrollment.status in ENDED_ENROLLMENT_STATUSES and not include_ended:
        return Conflict(f"enrollment {enrollment.pk} is {enrollment.status}; include ended enrollments to move it")
    return None


def _migrate_locked(
    enrollment_ids: Sequence[int],
    *,
    to_version: int,
    actor: User | None,
    include_on_hold: bool,
    include_ended: bool,
    pairs: PairCache,
    now: dt.datetime,
) -> list[_Move]:
    """Lock the enrollments (in id order), plan each, and apply every plan in bulk. Caller holds the transaction.

    A fixed number of statements for the whole batch, plus four per cancelled task (the one transition
    function, one task at a time): the reads (enrollments, schedules, open tasks), ending schedules, re-planning,
    starting (one insert and one materialization for all), re-pinning, and the `migrated` events.
    """
    # Lock first, then read: a row another run moved while this one waited for its lock would be dropped by
    # PostgreSQL's re-check of a locking query that joins the template (the join is re-checked against the old
    # template row), not found "already moved". The second statement's snapshot sees the committed version.
    locked = list(
        Enrollment.objects.select_for_update().filter(pk__in=enrollment_ids).order_by("pk").values_list("pk", flat=True)
    )
    enrollments = list(
        Enrollment.objects.select_related("patient__site", "template").filter(pk__in=locked).order_by("pk")
    )
    moves = [_Move(e) for e in enrollments]
    for move in moves:
        move.refused = _refusal(
            move.enrollment,
            to_version=to_version,
            actor=actor,
            include_on_hold=include_on_hold,
            include_ended=include_ended,
        )
    going = [m for m in moves if m.refused is None]
    if not going:
        return moves
    by_enrollment = {m.enrollment.pk: m for m in going}
    schedules = enrollments_schedules([m.enrollment for m in going], lock=True)
    open_tasks = enrollments_open_tasks(list(by_enrollment))
    for move in list(going):
        e = move.enrollment
        move.pair = pairs.get(slug=e.pathway_slug, from_version=e.template.version, to_version=to_version)
        if move.pair.new.status != TemplateStatus.ACTIVE:
            # Only forward to what the site runs now: moving back to a retired version would silently undo a
            # site's change (FHIR $apply refuses a retired version too).
            move.refused = InvalidInput(
                f"version {to_version} of {e.pathway_slug} is {move.pair.new.status}; enrollments move only to "
                "the active version",
                fields={"to_version": ["use the active version"]},
            )
            going.remove(move)
            continue
        move.schedules = schedules.get(e.pk, [])
        move.plan = enrollment_migration_plan(
            enrollment=e, pair=move.pair, schedules=move.schedules, open_tasks=open_tasks.get(e.pk, []), now=now
        )
    if going:
        _apply(going, actor=actor, now=now)
    return moves


def _apply(moves: list[_Move], *, actor: User | None, now: dt.datetime) -> None:
    """Apply the planned moves of one batch: cancellations one task at a time, the rest in bulk."""
    ended: set[int] = set()
    replans: list[tuple[Schedule, TaskTemplate, bool]] = []
    starts: list[tuple[Enrollment, list[TaskTemplate], bool]] = []
    events = []
    for move in moves:
        plan, pair = move.plan, move.pair
        assert plan is not None and pair is not None  # set by _migrate_locked for every move that goes
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
        mine_ended = {item["schedule"] for item in plan.schedules_ended}
        ended |= mine_ended
        replanned = {item["template"] for item in plan.schedules_replanned}
        replans += [
            (s, pair.new_templates[s.task_template.code], s.task_template.code in replanned)
            for s in move.schedules
            if s.pk not in mine_ended and s.task_template.code in pair.new_templates
        ]
        if plan.schedules_started:
            templates = [pair.new_templates[item["template"]] for item in plan.schedules_started]
            starts.append((move.enrollment, templates, move.enrollment.status == EnrollmentStatus.ON_HOLD))
        events.append(
            EnrollmentEvent(
                enrollment=move.enrollment,
                kind=EnrollmentEventKind.MIGRATED,
                actor=actor,
                at=now,
                reason=f"moved from v{plan.from_version} to v{plan.to_version}",
                data={**versions, "plan": plan.as_dict()},
            )
        )
    schedules_finish_by_id(schedule_ids=ended, now=now)
    schedules_replan(moves=replans, now=now)
    schedules_start_many(starts=starts, actor=actor, now=now)
    # Every move in a batch goes to the same target version (pairs differ only in their old version).
    new_version = moves[0].pair.new  # type: ignore[union-attr]
    Enrollment.objects.filter(pk__in=[m.enrollment.pk for m in moves]).update(template=new_version)
    for move in moves:
        move.enrollment.template = new_version
    EnrollmentEvent.objects.bulk_create(events)


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
    versions and the plan. Raises NotFound, NotPermitted (not a coordinator at the patient's site, nor an
    admin), InvalidInput (no such version), AlreadyOnVersion (409; nothing to do), Conflict (on hold or ended
    and not included).
    """
    moves = _migrate_locked(
        [enrollment_id],
        to_version=to_version,
        actor=actor,
        include_on_hold=include_on_hold,
        include_ended=include_ended,
        pairs=pairs or PairCache(),
        now=now or timezone.now(),
    )
    if not moves:
        raise NotFound(f"enrollment {enrollment_id} not found")
    [move] = moves
    if move.refused is not None:
        raise move.refused
    assert move.plan is not None
    return move.plan


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
    batch_size: int = 100,
    now: dt.datetime | None = None,
) -> MigrationRun:
    """Move every selected enrollment (selectors/migration.py `enrollments_for_migration`) to `to_version`,
    oldest first, in batches, and report.

    Resumable: an interrupted run is simply run again; enrollments already moved are no longer selected, and
    one moved meanwhile by a concurrent run is found on the target version under its lock and counted as
    `already`, never moved twice. `limit` moves at most that many (the rest are counted as `remaining`).
    Enrollments move `batch_size` to a transaction (one commit, bulk writes; each under its row lock, each
    with its own plan and event); `progress` is called after each batch commits, so an interruption loses at
    most the batch in flight, which the next run moves. Should a batch fail, its enrollments are moved one per
    transaction, and only the one that fails is rolled back and listed. `now`: the migration time (default:
    the clock, read per batch).
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
    for first in range(0, len(ids), batch_size):
        batch = ids[first : first + batch_size]
        try:
            with transaction.atomic():
                moves = _migrate_locked(
                    batch,
                    to_version=to_version,
                    actor=actor,
                    include_on_hold=include_on_hold,
                    include_ended=include_ended,
                    pairs=pairs,
                    now=now or timezone.now(),
                )
            outcomes: list[tuple[int, MigrationPlan | DomainError | None]] = [
                (m.enrollment.pk, m.refused or m.plan) for m in moves
            ]
        except (DomainError, IntegrityError):
            # One enrollment spoilt the batch: each alone, in its own transaction, so only that one fails.
            logger.warning("migration batch of %s enrollments failed; moving them one at a time", len(batch))
            outcomes = [
                (pk, _migrate_alone(pk, to_version, actor, include_on_hold, include_ended, pairs, now)) for pk in batch
            ]
        for enrollment_id, outcome in outcomes:
            if isinstance(outcome, AlreadyOnVersion):
                run.already += 1
            elif isinstance(outcome, DomainError):
                logger.warning("enrollment %s not migrated: %s", enrollment_id, outcome.code)
                run.failed.append((enrollment_id, outcome.message))
            elif outcome is not None:
                run.migrated += 1
                if keep_plans:
                    run.plans.append(outcome)
        # Enrollments deleted since the selection are simply gone.
        run.remaining -= len(batch)
        if progress is not None:
            progress(run)
    return run


def _migrate_alone(
    enrollment_id: int,
    to_version: int,
    actor: User | None,
    include_on_hold: bool,
    include_ended: bool,
    pairs: PairCache,
    now: dt.datetime | None,
) -> MigrationPlan | DomainError | None:
    try:
        return enrollment_migrate(
            enrollment_id=enrollment_id,
            to_version=to_version,
            actor=actor,
            include_on_hold=include_on_hold,
            include_ended=include_ended,
            now=now,
            pairs=pairs,
        )
    except NotFound:
        return None
    except DomainError as exc:
        return exc
    except IntegrityError:
        # Rows that break a constraint (e.g. a schedule already made by hand for a template the version adds).
        logger.exception("enrollment %s: a database constraint refused the migration", enrollment_id)
        return Conflict(f"enrollment {enrollment_id}: a database constraint refused the migration; see the log")
