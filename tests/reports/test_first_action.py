"""pathways_firstaction, kept by triggers on pathways_task (migration 0006), on PostgreSQL and on SQLite.

Per enrollment and (prong, role, template code) the table holds the earliest action time
COALESCE(started_at, completed_at) of the group's tasks; whatever writes the tasks (create, the services,
queryset.update, COPY), the rows must equal a from-scratch GROUP BY over pathways_task.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
from typing import Any

import pytest
from django.db import connection
from django.db.models import Min, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from bench.data import BENCH_SITES, bench_fill
from pathways.choices import Prong, Role, TaskStatus
from pathways.models import CareTeamMember, Enrollment, FirstAction, PathwayTemplate, Task, TaskTemplate
from pathways.services.enrollment import enrollment_apply
from pathways.services.tasks import task_claim, task_transition
from tests.factories import PatientFactory

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WOUND, CALCIUM = Prong.WOUND_CARE, Prong.CALCIUM_REDUCTION
BACKFILL = importlib.import_module("pathways.migrations.0006_first_action").BACKFILL


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def _enrol(pathway: PathwayTemplate, site: Any, when: dt.datetime = T0) -> Enrollment:
    return Enrollment.objects.create(
        patient=PatientFactory(site=site), template=pathway, pathway_slug=pathway.slug, enrolled_at=when
    )


def _task(
    enrollment: Enrollment,
    *,
    prong: str = WOUND,
    role: str = Role.WOUND_NURSING,
    template: str | None = "wound-assessment",
    started: dt.datetime | None = None,
    done: dt.datetime | None = None,
) -> Task:
    tmpl = TaskTemplate.objects.get(pathway=enrollment.template, code=template) if template else None
    status = TaskStatus.COMPLETED if done else TaskStatus.IN_PROGRESS if started else TaskStatus.REQUESTED
    return Task.objects.create(
        enrollment=enrollment,
        template=tmpl,
        title="synthetic",
        prong=prong,
        role=role,
        status=status,
        available_at=hours(-48),
        due_at=hours(48),
        started_at=started,
        completed_at=done,
    )


def stored() -> set[tuple[Any, ...]]:
    return set(FirstAction.objects.values_list("enrollment_id", "prong", "role", "template_code", "at"))


def from_scratch() -> set[tuple[Any, ...]]:
    """The same rows computed directly from the tasks (what _first_action groups today)."""
    rows = (
        Task.objects.exclude(started_at__isnull=True, completed_at__isnull=True)
        .values("enrollment_id", "prong", "role", code=Coalesce("template__code", Value("")))
        .annotate(at=Min(Coalesce("started_at", "completed_at")))
        .values_list("enrollment_id", "prong", "role", "code", "at")
    )
    return set(rows)


def first_action(enrollment: Enrollment, template_code: str = "wound-assessment") -> dt.datetime | None:
    row = FirstAction.objects.filter(enrollment=enrollment, template_code=template_code).first()
    return row.at if row else None


def test_a_task_inserted_with_an_action_time_records_a_row_and_one_without_none(pathway, site) -> None:
    enrollment = _enrol(pathway, site)
    _task(enrollment)  # requested: no action yet
    assert not FirstAction.objects.exists()
    _task(enrollment, done=hours(5))  # created already completed (never started): the completion is the action
    assert stored() == {(enrollment.pk, WOUND, Role.WOUND_NURSING, "wound-assessment", hours(5))}
    # started_at wins over completed_at when both are set, as in COALESCE(started_at, completed_at).
    _task(enrollment, prong=CALCIUM, role=Role.NEPHROLOGY, template="pth-alp", started=hours(9), done=hours(3))
    assert first_action(enrollment, "pth-alp") == hours(9)


def test_the_task_services_record_the_first_action_and_only_ever_lower_it(pathway, coordinator, site) -> None:
    patient = PatientFactory(site=site)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=T0)
    assert not FirstAction.objects.filter(enrollment=enrollment).exists()  # the pathway's tasks are all requested
    task = Task.objects.get(enrollment=enrollment, template__code="wound-assessment")
    # Another task of the same group, inserted already completed late on: the first action so far.
    _task(enrollment, done=hours(30))
    assert first_action(enrollment) == hours(30)
    # Started through the real service: UPDATE OF started_at lowers it.
    task = task_transition(
        task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=None, expected_version=1, now=hours(2)
    )
    assert first_action(enrollment) == hours(2)
    # Completing it changes completed_at but not its action time (started_at): nothing moves.
    task_transition(task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=None, expected_version=2, now=hours(4))
    assert first_action(enrollment) == hours(2)
    # A later action of the group never raises it.
    later = _task(enrollment)
    task_transition(task_id=later.pk, to_status=TaskStatus.IN_PROGRESS, actor=None, expected_version=1, now=hours(6))
    assert first_action(enrollment) == hours(2)
    assert FirstAction.objects.filter(enrollment=enrollment).count() == 1
    assert stored() == from_scratch()


def test_a_task_accepted_then_completed_records_its_completion(pathway, coordinator, site, wound_nurse) -> None:
    patient = PatientFactory(site=site)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator, now=T0)
    CareTeamMember.objects.create(enrollment=enrollment, user=wound_nurse, role=Role.WOUND_NURSING, period_start=T0)
    task = Task.objects.get(enrollment=enrollment, template__code="wound-assessment")
    task_claim(task_id=task.pk, actor=wound_nurse, expected_version=1, now=hours(1))
    assert first_action(enrollment) is None  # accepting is not an action
    task_transition(
        task_id=task.pk, to_status=TaskStatus.COMPLETED, actor=wound_nurse, expected_version=2, now=hours(3)
    )
    assert first_action(enrollment) == hours(3)


def test_a_later_time_written_over_an_earlier_one_does_not_raise_it(pathway, site) -> None:
    enrollment = _enrol(pathway, site)
    task = _task(enrollment, started=hours(2))
    Task.objects.filter(pk=task.pk).update(started_at=hours(8))
    assert first_action(enrollment) == hours(2)
    Task.objects.filter(pk=task.pk).update(started_at=hours(1))  # an earlier one, by any writer, lowers it
    assert first_action(enrollment) == hours(1)


def test_an_ad_hoc_task_has_an_empty_template_code(pathway, site) -> None:
    enrollment = _enrol(pathway, site)
    _task(enrollment, template=None, done=hours(1))
    assert stored() == {(enrollment.pk, WOUND, Role.WOUND_NURSING, "", hours(1))}


def test_each_enrollment_prong_role_and_template_has_its_own_row(pathway, site) -> None:
    e1, e2 = _enrol(pathway, site), _enrol(pathway, site)
    _task(e1, started=hours(1))
    _task(e1, started=hours(2), template="dressing-change")  # another template
    _task(e1, started=hours(3), role=Role.DERMATOLOGY)  # another role
    _task(e1, started=hours(4), prong=Prong.SUPPORT)  # another prong
    _task(e1, started=hours(5), template=None)  # ad hoc
    _task(e2, started=hours(6))  # another enrollment
    _task(e1, started=hours(7))  # same group as the first: no new row
    assert stored() == {
        (e1.pk, WOUND, Role.WOUND_NURSING, "wound-assessment", hours(1)),
        (e1.pk, WOUND, Role.WOUND_NURSING, "dressing-change", hours(2)),
        (e1.pk, WOUND, Role.DERMATOLOGY, "wound-assessment", hours(3)),
        (e1.pk, Prong.SUPPORT, Role.WOUND_NURSING, "wound-assessment", hours(4)),
        (e1.pk, WOUND, Role.WOUND_NURSING, "", hours(5)),
        (e2.pk, WOUND, Role.WOUND_NURSING, "wound-assessment", hours(6)),
    }


def test_the_rows_equal_a_group_by_over_the_tasks(pathway, site) -> None:
    """A random history written every way the application writes tasks: created with or without an action time,
    one by one and in bulk, then started and completed in random order at random (not increasing) times. As in
    the services, a task's action time is set once: started_at only while null, completed_at once."""
    rng = random.Random(7)
    enrollments = [_enrol(pathway, site) for _ in range(3)]
    groups = [
        (WOUND, Role.WOUND_NURSING, "wound-assessment"),
        (WOUND, Role.WOUND_NURSING, None),
        (CALCIUM, Role.DIALYSIS_NURSING, "sodium-thiosulfate"),
        (CALCIUM, Role.NEPHROLOGY, "pth-alp"),
    ]
    templates = {t.code: t for t in TaskTemplate.objects.filter(pathway=pathway)}

    def when() -> dt.datetime:
        return hours(rng.randint(0, 500) + rng.random())

    def new() -> Task:
        prong, role, code = rng.choice(groups)
        r = rng.random()
        started = when() if r < 0.25 else None
        done = when() if 0.25 <= r < 0.5 else None
        return Task(
            enrollment=rng.choice(enrollments),
            template=templates[code] if code else None,
            title="synthetic",
            prong=prong,
            role=role,
            available_at=hours(-48),
            due_at=hours(48),
            started_at=started,
            completed_at=done,
        )

    for _ in range(20):
        new().save()
    Task.objects.bulk_create([new() for _ in range(40)])
    for _ in range(60):
        pk = rng.choice(list(Task.objects.values_list("pk", flat=True)))
        if rng.random() < 0.5:
            Task.objects.filter(pk=pk, started_at=None, completed_at=None).update(started_at=when())
        else:
            Task.objects.filter(pk=pk, completed_at=None).update(completed_at=when())
    expected = from_scratch()
    assert len(expected) >= 10
    assert stored() == expected


def test_the_migration_backfill_rebuilds_the_rows(pathway, site) -> None:
    e1, e2 = _enrol(pathway, site), _enrol(pathway, site)
    _task(e1, started=hours(3))
    _task(e1, done=hours(1))
    _task(e1, template=None, done=hours(2))
    _task(e2, prong=CALCIUM, role=Role.NEPHROLOGY, template="pth-alp", started=hours(4), done=hours(5))
    _task(e2)
    expected = from_scratch()
    assert stored() == expected
    FirstAction.objects.all().delete()  # as before the migration: tasks, no first actions
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL)
    assert stored() == expected
    with connection.cursor() as cursor:  # it may run again (a repair): same rows, no error
        cursor.execute(BACKFILL)
    assert stored() == expected
    FirstAction.objects.filter(enrollment=e1, template_code="").update(at=hours(9))  # drifted upwards: repaired
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL)
    assert stored() == expected


@pytest.mark.postgres
def test_with_the_insert_trigger_disabled_nothing_is_recorded_and_the_backfill_fills_it(pathway, site) -> None:
    with connection.cursor() as cursor:
        # Before any task row exists in this transaction: PostgreSQL refuses ALTER TABLE on a table with pending
        # (deferred foreign-key) trigger events. Rolled back with the test.
        cursor.execute("ALTER TABLE pathways_task DISABLE TRIGGER pathways_task_first_action_insert")
    enrollment = _enrol(pathway, site)
    _task(enrollment, started=hours(3))
    _task(enrollment, done=hours(1))
    _task(enrollment, template=None, started=hours(2))
    assert not FirstAction.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL)
    assert (
        stored()
        == from_scratch()
        == {
            (enrollment.pk, WOUND, Role.WOUND_NURSING, "wound-assessment", hours(1)),
            (enrollment.pk, WOUND, Role.WOUND_NURSING, "", hours(2)),
        }
    )


@pytest.mark.postgres
def test_the_bench_copy_fills_the_table_through_the_trigger(pathway: PathwayTemplate) -> None:
    bench_fill(tasks=300, now=timezone.now(), progress=False)
    sites = [code for code, _, _ in BENCH_SITES]
    assert Task.objects.filter(enrollment__patient__site__code__in=sites).exclude(started_at=None).exists()
    assert len(stored()) > 10
    assert stored() == from_scratch()


def test_rows_go_with_their_enrollment(pathway, site) -> None:
    enrollment = _enrol(pathway, site)
    _task(enrollment, done=hours(1))
    Task.objects.filter(enrollment=enrollment).delete()  # tasks PROTECT their enrollment
    Enrollment.objects.filter(pk=enrollment.pk).delete()
    assert not FirstAction.objects.exists()
