"""Version migration: the diff, the dry-run plan, and moving enrollments over (one, and many, resumably)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pathways.choices import (
    EnrollmentEventKind,
    ScheduleStatus,
    TaskStatus,
)
from pathways.errors import Conflict, InvalidInput, NotPermitted
from pathways.models import Enrollment, EnrollmentEvent, PathwayTemplate, Schedule, Task, TaskEvent, User
from pathways.selectors.migration import enrollment_migration_preview, pathway_versions_compare
from pathways.services.enrollment import enrollment_apply, enrollment_hold
from pathways.services.migration import AlreadyOnVersion, MigrationRun, enrollment_migrate, enrollments_migrate
from pathways.services.observations import observation_record
from pathways.services.tasks import task_hold, task_transition
from tests.factories import PatientFactory, SiteFactory, UserFactory
from tests.versions import ADDED, REMOVED, REPLANNED, RULE_CHANGED, load_document, version_two_document

# Monday 2026-03-02 15:00 UTC = 09:00 in Chicago (CST). Migration on Thursday 16:00 UTC; Chicago moves to
# daylight time on Sunday 2026-03-08, so "every 3 days at 09:00 local" next falls at 14:00 UTC that Sunday.
MONDAY = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
THURSDAY = dt.datetime(2026, 3, 5, 16, 0, tzinfo=dt.UTC)
SUNDAY_0900_CDT = dt.datetime(2026, 3, 8, 14, 0, tzinfo=dt.UTC)


@pytest.fixture
def load_v2(pathway: PathwayTemplate, tmp_path) -> Callable[[], PathwayTemplate]:
    """Loads version 2 when called: enrollments made before the call are on version 1."""
    return lambda: load_document(tmp_path, version_two_document())


def _enrol(patient_site, coordinator: User, now: dt.datetime = MONDAY) -> Enrollment:
    patient = PatientFactory(site=patient_site)
    return enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=now)


# --- the diff ---------------------------------------------------------------------------------------------


def test_the_diff_names_added_removed_and_changed_templates_and_rules_with_the_changed_fields(load_v2) -> None:
    load_v2()
    diff = pathway_versions_compare(slug="calciphylaxis", from_version=1, to_version=2).diff

    assert diff.templates_added == [ADDED]
    assert diff.templates_removed == [REMOVED]
    [changed] = diff.templates_changed
    assert changed.code == REPLANNED
    assert set(changed.fields) == {"recurrence"}
    assert (changed.fields["recurrence"].old, changed.fields["recurrence"].new) == (
        {"kind": "interval", "every_days": 7},
        {"kind": "interval", "every_days": 3},
    )
    assert changed.timing_changed
    assert (diff.rules_added, diff.rules_removed) == ([], [])
    [rule] = diff.rules_changed
    assert rule.code == RULE_CHANGED and set(rule.fields) == {"when"}
    assert rule.fields["when"].old["any"][0]["value"] == 5.5
    assert rule.fields["when"].new["any"][0]["value"] == 6.0


def test_the_diff_of_a_version_with_itself_or_a_missing_version_is_refused(load_v2) -> None:
    load_v2()
    with pytest.raises(InvalidInput) as same:
        pathway_versions_compare(slug="calciphylaxis", from_version=2, to_version=2)
    assert "to_version" in same.value.fields
    with pytest.raises(InvalidInput) as missing:
        pathway_versions_compare(slug="calciphylaxis", from_version=1, to_version=9)
    assert missing.value.fields == {"to_version": ["no such version"]}


# --- the plan and its execution -----------------------------------------------------------------------------


def _snapshot(enrollment: Enrollment) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    tasks = {row["id"]: row for row in Task.objects.filter(enrollment=enrollment).values()}
    schedules = {row["id"]: row for row in Schedule.objects.filter(enrollment=enrollment).values()}
    return tasks, schedules


def _task_of(enrollment: Enrollment, code: str) -> Task:
    return Task.objects.get(enrollment=enrollment, template__code=code)


def test_migrating_an_enrollment_with_open_completed_and_held_tasks_does_exactly_the_plan(
    load_v2, site, coordinator
) -> None:
    enrollment = _enrol(site, coordinator)
    v2 = load_v2()
    huddle = _task_of(enrollment, "team-huddle")
    task_transition(task_id=huddle.pk, to_status=TaskStatus.ACCEPTED, actor=None, expected_version=None, now=MONDAY)
    task_transition(task_id=huddle.pk, to_status=TaskStatus.COMPLETED, actor=None, expected_version=None, now=MONDAY)
    held_kept = _task_of(enrollment, "infection-surveillance")
    task_hold(task_id=held_kept.pk, actor=None, expected_version=None, reason="awaiting culture", now=MONDAY)
    held_removed = _task_of(enrollment, REMOVED)
    task_hold(task_id=held_removed.pk, actor=None, expected_version=None, reason="patient asleep", now=MONDAY)
    tasks_before, schedules_before = _snapshot(enrollment)
    open_before = sum(1 for t in tasks_before.values() if t["status"] not in ("completed", "cancelled"))

    pair = pathway_versions_compare(slug="calciphylaxis", from_version=1, to_version=2)
    enrollment = Enrollment.objects.select_related("patient__site").get(pk=enrollment.pk)
    preview = enrollment_migration_preview(enrollment=enrollment, pair=pair, now=THURSDAY)
    with time_machine.travel(THURSDAY, tick=False):
        plan = enrollment_migrate(enrollment_id=enrollment.pk, to_version=2, actor=coordinator, now=THURSDAY)

    # The dry run and the run agree, and the plan says what the rules say.
    assert plan.as_dict() == preview.as_dict()
    assert plan.tasks_cancelled == [
        {"task": held_removed.pk, "template": REMOVED, "status": "on-hold", "reason": "removed in v2"}
    ]
    removed_schedule = Schedule.objects.get(enrollment=enrollment, task_template__code=REMOVED)
    assert plan.schedules_ended == [{"template": REMOVED, "schedule": removed_schedule.pk, "reason": "removed in v2"}]
    replanned_schedule = schedules_before[Schedule.objects.get(enrollment=enrollment, task_template__code=REPLANNED).pk]
    assert plan.schedules_replanned == [
        {
            "template": REPLANNED,
            "schedule": replanned_schedule["id"],
            "next_due_at": {"old": replanned_schedule["next_due_at"].isoformat(), "new": SUNDAY_0900_CDT.isoformat()},
            "finished": False,
        }
    ]
    assert plan.schedules_started == [{"template": ADDED, "next_due_at": THURSDAY.isoformat()}]
    assert plan.tasks_created == [
        {
            "template": ADDED,
            "available_at": THURSDAY.isoformat(),
            "due_at": (THURSDAY + dt.timedelta(hours=24)).isoformat(),
        }
    ]
    assert plan.open_tasks_kept == open_before - 1

    # ... and the database holds exactly that, nothing else.
    tasks_after, schedules_after = _snapshot(enrollment)
    new_tasks = [t for pk, t in tasks_after.items() if pk not in tasks_before]
    assert [(t["template_id"], t["available_at"], t["status"]) for t in new_tasks] == [
        (v2.task_templates.get(code=ADDED).pk, THURSDAY, TaskStatus.REQUESTED)
    ]
    cancelled = tasks_after[held_removed.pk]
    assert cancelled["status"] == TaskStatus.CANCELLED
    assert TaskEvent.objects.filter(task_id=held_removed.pk, to_status="cancelled", reason="removed in v2").exists()
    for pk, before in tasks_before.items():
        if pk != held_removed.pk:
            assert tasks_after[pk] == before, f"task {pk} changed"
    assert tasks_after[held_kept.pk]["status"] == TaskStatus.ON_HOLD
    assert tasks_after[huddle.pk]["status"] == TaskStatus.COMPLETED

    v2_ids = dict(v2.task_templates.values_list("code", "pk"))
    for pk, before in schedules_before.items():
        after = schedules_after[pk]
        code = Schedule.objects.get(pk=pk).task_template.code
        if pk == removed_schedule.pk:
            assert (after["status"], after["next_due_at"], after["finished_at"]) == ("finished", None, THURSDAY)
            assert after["task_template_id"] == before["task_template_id"]  # v2 has no such template
            continue
        assert after["task_template_id"] == v2_ids[code]
        if pk == replanned_schedule["id"]:
            assert after["next_due_at"] == SUNDAY_0900_CDT
            changed = {"task_template_id", "next_due_at", "updated_at"}
        else:
            changed = {"task_template_id", "updated_at"}
        assert {k: v for k, v in after.items() if k not in changed} == {
            k: v for k, v in before.items() if k not in changed
        }, code
    [started] = [s for pk, s in schedules_after.items() if pk not in schedules_before]
    assert started["task_template_id"] == v2_ids[ADDED]
    assert (started["anchor_at"], started["occurrences_made"]) == (THURSDAY, 1)

    enrollment.refresh_from_db()
    assert enrollment.template_id == v2.pk
    event = EnrollmentEvent.objects.get(enrollment=enrollment, kind=EnrollmentEventKind.MIGRATED)
    assert (event.actor, event.at, event.data["from_version"], event.data["to_version"]) == (
        coordinator,
        THURSDAY,
        1,
        2,
    )
    assert event.data["plan"] == plan.as_dict()


def test_after_migrating_the_new_versions_rules_apply(load_v2, site, coordinator) -> None:
    """Phosphate 5.8 fires the rule on v1 (> 5.5), not on v2 (> 6.0)."""
    on_v1 = _enrol(site, coordinator)
    moved = _enrol(site, coordinator)
    load_v2()
    enrollment_migrate(enrollment_id=moved.pk, to_version=2, actor=coordinator, now=THURSDAY)
    title = "High phosphate or calcium: nephrology review"
    for enrollment in (on_v1, moved):
        observation_record(
            enrollment_id=enrollment.pk,
            code="phosphate",
            value="5.8",
            unit="mg/dL",
            effective_at=THURSDAY,
            actor=coordinator,
            now=THURSDAY,
        )
    assert Task.objects.filter(enrollment=on_v1, title=title).exists()
    assert not Task.objects.filter(enrollment=moved, title=title).exists()


def test_migrating_twice_is_refused_and_changes_nothing(load_v2, site, coordinator) -> None:
    enrollment = _enrol(site, coordinator)
    load_v2()
    enrollment_migrate(enrollment_id=enrollment.pk, to_version=2, actor=coordinator, now=THURSDAY)
    before = _snapshot(enrollment)
    with pytest.raises(AlreadyOnVersion):
        enrollment_migrate(enrollment_id=enrollment.pk, to_version=2, actor=coordinator, now=THURSDAY)
    assert _snapshot(enrollment) == before
    assert EnrollmentEvent.objects.filter(enrollment=enrollment, kind=EnrollmentEventKind.MIGRATED).count() == 1


def test_an_on_hold_enrollment_moves_only_when_asked_and_its_new_schedules_start_paused(
    load_v2, site, coordinator
) -> None:
    enrollment = _enrol(site, coordinator)
    enrollment_hold(enrollment_id=enrollment.pk, actor=coordinator, reason="admitted elsewhere", now=MONDAY)
    load_v2()
    with pytest.raises(Conflict):
        enrollment_migrate(enrollment_id=enrollment.pk, to_version=2, actor=coordinator, now=THURSDAY)
    tasks_before = Task.objects.filter(enrollment=enrollment).count()

    plan = enrollment_migrate(
        enrollment_id=enrollment.pk, to_version=2, actor=coordinator, include_on_hold=True, now=THURSDAY
    )
    assert plan.tasks_created == []
    started = Schedule.objects.get(enrollment=enrollment, task_template__code=ADDED)
    assert (started.status, started.paused_at) == (ScheduleStatus.PAUSED, THURSDAY)
    assert Task.objects.filter(enrollment=enrollment).count() == tasks_before


def test_a_coordinator_at_another_site_may_not_migrate(load_v2, site, coordinator) -> None:
    enrollment = _enrol(site, coordinator)
    load_v2()
    elsewhere = UserFactory(roles=["coordinator"], sites=[SiteFactory(code="far")])
    with pytest.raises(NotPermitted):
        enrollment_migrate(enrollment_id=enrollment.pk, to_version=2, actor=elsewhere, now=THURSDAY)
    assert Enrollment.objects.get(pk=enrollment.pk).template.version == 1


# --- many ---------------------------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def test_a_migration_of_1000_enrollments_interrupted_part_way_resumes_and_moves_none_twice(
    load_v2, site, coordinator
) -> None:
    with time_machine.travel(MONDAY, tick=False):
        for _ in range(1000):
            _enrol(site, coordinator)
    v2 = load_v2()
    held = Enrollment.objects.order_by("pk")[3]
    enrollment_hold(enrollment_id=held.pk, actor=coordinator, reason="away", now=MONDAY)

    def stop_after_400(run: MigrationRun) -> None:
        if run.migrated == 400:
            raise Interrupted

    with time_machine.travel(THURSDAY, tick=False):
        with pytest.raises(Interrupted):
            enrollments_migrate(slug="calciphylaxis", to_version=2, actor=None, progress=stop_after_400)
        assert Enrollment.objects.filter(template=v2).count() == 400
        resumed = enrollments_migrate(slug="calciphylaxis", to_version=2, actor=None)

    assert (resumed.selected, resumed.migrated, resumed.already, resumed.failed) == (599, 599, 0, [])
    assert resumed.skipped_on_hold == 1
    assert Enrollment.objects.filter(template=v2).count() == 999
    assert Enrollment.objects.get(pk=held.pk).template.version == 1
    events = EnrollmentEvent.objects.filter(kind=EnrollmentEventKind.MIGRATED)
    assert events.count() == 999
    assert events.values("enrollment").distinct().count() == 999
    # One new template's day-0 task and one cancelled removed-template task per moved enrollment, no more.
    assert Task.objects.filter(template__code=ADDED).count() == 999
    assert Task.objects.filter(template__code=REMOVED, status=TaskStatus.CANCELLED).count() == 999
    again = enrollments_migrate(slug="calciphylaxis", to_version=2, actor=None)
    assert (again.selected, again.migrated) == (0, 0)


def test_a_migration_of_many_for_a_coordinator_moves_only_their_sites_enrollments(load_v2, site, coordinator) -> None:
    mine = _enrol(site, coordinator)
    other_site = SiteFactory(code="far", timezone="America/New_York")
    other = _enrol(other_site, UserFactory(roles=["coordinator"], sites=[other_site]))
    v2 = load_v2()
    run = enrollments_migrate(slug="calciphylaxis", to_version=2, actor=coordinator)
    assert run.migrated == 1
    assert Enrollment.objects.get(pk=mine.pk).template_id == v2.pk
    assert Enrollment.objects.get(pk=other.pk).template.version == 1


def test_an_enrollment_that_spoils_its_batch_fails_alone_and_the_others_move(load_v2, site, coordinator) -> None:
    with time_machine.travel(MONDAY, tick=False):
        good, bad, other = (_enrol(site, coordinator) for _ in range(3))
    v2 = load_v2()
    # Rows no service makes: a second team-huddle schedule, already on v2's template; moving the v1 one onto that
    # template breaks the one-schedule-per-template constraint.
    Schedule.objects.create(
        enrollment=bad, task_template=v2.task_templates.get(code="team-huddle"), anchor_at=MONDAY, next_due_at=None
    )
    with time_machine.travel(THURSDAY, tick=False):
        run = enrollments_migrate(slug="calciphylaxis", to_version=2, actor=None)
    assert run.migrated == 2
    assert [pk for pk, _ in run.failed] == [bad.pk]
    versions = dict(Enrollment.objects.values_list("pk", "template__version"))
    assert versions == {good.pk: 2, bad.pk: 1, other.pk: 2}
    # The failed one is exactly as it was: its removed template's task still open.
    assert Task.objects.get(enrollment=bad, template__code=REMOVED).status == TaskStatus.REQUESTED


def _queries(count: int) -> int:
    with CaptureQueriesContext(connection) as ctx:
        run = enrollments_migrate(slug="calciphylaxis", to_version=2, actor=None, limit=count)
    assert run.migrated == count
    return len(ctx.captured_queries)


def test_the_queries_per_migrated_enrollment_are_constant(load_v2, site, coordinator) -> None:
    with time_machine.travel(MONDAY, tick=False):
        for _ in range(25):
            _enrol(site, coordinator)
    load_v2()
    with time_machine.travel(THURSDAY, tick=False):
        five, twenty = _queries(5), _queries(20)
    # A fixed setup (the selection, the two versions, each batch's bulk writes) plus the same number for each
    # enrollment: the cancelled task of the removed template (the transition function, one task at a time).
    per_enrollment = (twenty - five) / 15
    assert per_enrollment == int(per_enrollment)
    assert five - 5 * per_enrollment == twenty - 20 * per_enrollment
    assert per_enrollment <= 8


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_migrations_of_many_move_each_enrollment_once(load_v2, site, coordinator) -> None:
    with time_machine.travel(MONDAY, tick=False):
        ids = [_enrol(site, coordinator).pk for _ in range(60)]
    load_v2()
    barrier = threading.Barrier(2)
    runs: list[MigrationRun] = []

    def migrate() -> None:
        try:
            barrier.wait(timeout=10)
            runs.append(enrollments_migrate(slug="calciphylaxis", to_version=2, actor=None, batch_size=10))
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(runs) == 2 and all(not run.failed for run in runs)
    assert sum(run.migrated for run in runs) == 60
    # Both selected the same enrollments; whatever one moved, the other found done under the lock.
    assert [run.selected for run in runs] == [60, 60], runs
    assert sum(run.migrated + run.already for run in runs) == 120
    events = EnrollmentEvent.objects.filter(kind=EnrollmentEventKind.MIGRATED)
    assert sorted(events.values_list("enrollment_id", flat=True)) == sorted(ids)
    assert Task.objects.filter(template__code=ADDED).count() == 60


def test_a_migration_starts_new_templates_only_in_the_enrollments_own_stage(pathway, site, coordinator, tmp_path):
    # Issue 16's stages meet issue 14's migration: a version that adds a workup template and a treatment template
    # gives a confirmed case the treatment one only, and a suspected case the workup one only.
    from pathways.choices import DiagnosisStatus
    from tests.versions import NEW_TEMPLATE, bundled_document, load_document

    confirmed = _enrol(site, coordinator)
    suspected = enrollment_apply(
        patient_id=PatientFactory(site=site).pk,
        pathway_slug="calciphylaxis",
        actor=coordinator,
        diagnosis_status=DiagnosisStatus.PROVISIONAL,
        now=MONDAY,
    )
    document = bundled_document()
    document["task_templates"] += [
        {**NEW_TEMPLATE, "code": "extra-treatment"},
        {**NEW_TEMPLATE, "code": "extra-workup", "stage": "workup", "role": "dermatology", "prong": "wound_care"},
    ]
    load_document(tmp_path, document)
    for enrollment in (confirmed, suspected):
        enrollment_migrate(enrollment_id=enrollment.pk, to_version=2, actor=coordinator, now=THURSDAY)

    def started(enrollment: Enrollment) -> set[str]:
        codes = Schedule.objects.filter(enrollment=enrollment).values_list("task_template__code", flat=True)
        return set(codes) & {"extra-treatment", "extra-workup"}

    assert started(confirmed) == {"extra-treatment"}
    assert started(suspected) == {"extra-workup"}


def test_moving_back_to_a_retired_version_is_refused_and_changes_nothing(load_v2, site, coordinator) -> None:
    # The user test moved an enrollment made on v2 back to v1 (retired), silently undoing the site's change.
    load_v2()
    enrollment = _enrol(site, coordinator, now=THURSDAY)
    assert enrollment.template.version == 2
    before = _snapshot(enrollment)
    with pytest.raises(InvalidInput, match="only to the active version"):
        enrollment_migrate(enrollment_id=enrollment.pk, to_version=1, actor=coordinator, now=THURSDAY)
    run = enrollments_migrate(slug="calciphylaxis", to_version=1, actor=coordinator, now=THURSDAY)
    assert run.migrated == 0 and run.failed and "only to the active version" in run.failed[0][1]
    assert _snapshot(enrollment) == before
    assert not EnrollmentEvent.objects.filter(enrollment=enrollment, kind=EnrollmentEventKind.MIGRATED).exists()
