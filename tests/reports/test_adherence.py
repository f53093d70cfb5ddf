"""Adherence metrics on a constructed data set whose answers are worked out by hand in the comments.

Window: tasks due in [2026-01-01, 2026-01-31) UTC, as of 2026-01-31 00:00 UTC.
  E1 (patient P1, enrolled Jan 1 00:00)          E2 (patient P2, enrolled Jan 2 00:00)
  t1 wound   due Jan 5 12:00  done Jan 5 10:00 (on time; started Jan 5 09:00)
  t2 wound   due Jan 6 12:00  done Jan 6 16:00 (4 h late)
  t3 wound   due Jan 7 12:00  open, escalated     -> overdue 564 h (23.5 days)
  t4 wound   due Jan 8 12:00  cancelled           -> not counted as due
  t12 oxygen due Jan 25 12:00 done Jan 26 12:00 (24 h late; started Jan 26 06:00)
  t6 STS     due Jan 10 12:00 done Jan 10 11:00 (on time; started Jan 10 10:30)
  t7 STS     due Jan 12 12:00 done Jan 13 12:00 (24 h late)
  t8 STS     due Jan 14 12:00 failed              -> never completed
  t14 STS    due Jan 16 12:00 missed (its session ended undone) -> counted as due, not completed, and missed
  t9 labs    due Jan 15 12:00 done Jan 15 12:00 exactly (on time)
  t10 PTH    due Jan 20 12:00 in progress (started Jan 20 08:00) -> overdue 252 h
  t11 neph   due Feb 2 (after the window)
  t5 (E3, enrolled Dec 1 2025) due Dec 20 2025, done late (before the window)
  t13 (other site) due Jan 10, done on time: invisible to the Chicago auditor
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import random
from typing import Any

import pytest
import time_machine

from pathways.choices import Prong, Role, TaskStatus
from pathways.models import Enrollment, PathwayTemplate, Patient, Task, TaskTemplate, User
from pathways.selectors.adherence import adherence_by, adherence_window
from tests.api.conftest import client_for
from tests.factories import PatientFactory

UTC = dt.UTC
AS_OF = dt.datetime(2026, 1, 31, tzinfo=UTC)
START = dt.datetime(2026, 1, 1, tzinfo=UTC)


def at(day: int, hour: int = 12, month: int = 1, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def _enrol(patient: Patient, pathway: PathwayTemplate, when: dt.datetime) -> Enrollment:
    return Enrollment.objects.create(
        patient=patient, template=pathway, pathway_slug=pathway.slug, enrolled_at=when, status="active"
    )


def _task(
    enrollment: Enrollment,
    *,
    prong: str,
    role: str,
    due: dt.datetime,
    status: str = TaskStatus.REQUESTED,
    done: dt.datetime | None = None,
    started: dt.datetime | None = None,
    template: str | None = None,
    escalated: bool = False,
) -> Task:
    tmpl = TaskTemplate.objects.get(pathway=enrollment.template, code=template) if template else None
    return Task.objects.create(
        enrollment=enrollment,
        template=tmpl,
        title="synthetic",
        prong=prong,
        role=role,
        status=status,
        available_at=due - dt.timedelta(hours=4),
        due_at=due,
        completed_at=done,
        started_at=started,
        escalation_level=1 if escalated else 0,
    )


@pytest.fixture
def dataset(pathway, site, other_site) -> dict[str, Any]:
    p1, p2, p3 = PatientFactory(site=site), PatientFactory(site=site), PatientFactory(site=site)
    e1 = _enrol(p1, pathway, at(1, 0))
    e2 = _enrol(p2, pathway, at(2, 0))
    e3 = _enrol(p3, pathway, at(1, 0, month=12, year=2025))
    wound, calcium, oxygen = Prong.WOUND_CARE, Prong.CALCIUM_REDUCTION, Prong.OXYGENATION_BLOOD_FLOW
    done = TaskStatus.COMPLETED
    _task(e1, prong=wound, role=Role.WOUND_NURSING, due=at(5), status=done, done=at(5, 10), started=at(5, 9))
    _task(e1, prong=wound, role=Role.WOUND_NURSING, due=at(6), status=done, done=at(6, 16))
    _task(e1, prong=wound, role=Role.WOUND_NURSING, due=at(7), escalated=True)
    _task(e1, prong=wound, role=Role.WOUND_NURSING, due=at(8), status=TaskStatus.CANCELLED)
    _task(e1, prong=oxygen, role=Role.HYPERBARIC_MEDICINE, due=at(25), status=done, done=at(26), started=at(26, 6))
    sts, dn = "sodium-thiosulfate", Role.DIALYSIS_NURSING
    half_past_ten = at(10, 10) + dt.timedelta(minutes=30)
    _task(e2, prong=calcium, role=dn, due=at(10), status=done, done=at(10, 11), started=half_past_ten, template=sts)
    _task(e2, prong=calcium, role=dn, due=at(12), status=done, done=at(13), template=sts)
    _task(e2, prong=calcium, role=dn, due=at(14), status=TaskStatus.FAILED, template=sts)
    _task(e2, prong=calcium, role=dn, due=at(16), status=TaskStatus.MISSED, template=sts)
    _task(e2, prong=calcium, role=dn, due=at(15), status=done, done=at(15), template="pre-dialysis-labs")
    _task(
        e2, prong=calcium, role=Role.NEPHROLOGY, due=at(20), status=TaskStatus.IN_PROGRESS, started=at(20, 8),
        template="pth-alp",
    )  # fmt: skip
    _task(e2, prong=calcium, role=Role.NEPHROLOGY, due=at(2, month=2))
    _task(
        e3,
        prong=wound,
        role=Role.WOUND_NURSING,
        due=at(20, month=12, year=2025),
        status=done,
        done=at(21, month=12, year=2025),
    )
    other = _enrol(PatientFactory(site=other_site), pathway, at(1, 0))
    _task(other, prong=wound, role=Role.WOUND_NURSING, due=at(10), status=done, done=at(10, 8))
    return {"e1": e1, "e2": e2, "p1": p1, "p2": p2}


ZERO = {
    "missed": 0,
    "cancelled": 0,
    "overdue_open": 0,
    "overdue_age_hours_avg": None,
    "overdue_age_hours_max": None,
    "escalated": 0,
    "sts_doses_scheduled": 0,
    "sts_doses_given": 0,
    "sts_doses_missed": 0,
    "lab_rechecks_due": 0,
    "lab_rechecks_on_time": 0,
}

EXPECTED_BY_PRONG = {
    "calcium_reduction": {
        **ZERO,
        # t6, t7, t8, t9, t10, t14 due; t6 and t9 on time (t9 exactly at due), t7 late, t8 failed, t10 open,
        # t14 missed.
        "due": 6,
        "completed_on_time": 2,
        "completed_late": 1,
        "not_completed": 3,
        "missed": 1,
        "on_time_rate": 0.3333,
        "overdue_open": 1,
        "overdue_age_hours_avg": 252.0,
        "overdue_age_hours_max": 252.0,
        # lateness of completed tasks: [0, 0, 24] -> median 0; p90 at position 1.8 -> 0 + 0.8 * 24 = 19.2
        "lateness_hours_median": 0.0,
        "lateness_hours_p90": 19.2,
        # STS doses given / scheduled / missed: t6, t7 / t6, t7, t8, t14 / t14
        "sts_doses_scheduled": 4,
        "sts_doses_given": 2,
        "sts_doses_missed": 1,
        "lab_rechecks_due": 2,
        "lab_rechecks_on_time": 1,
        # E2 enrolled Jan 2 00:00, first action t6 started Jan 10 10:30 -> 8 days 10.5 h
        "first_action_enrollments": 1,
        "first_action_hours_median": 202.5,
    },
    "oxygenation_blood_flow": {
        **ZERO,
        "due": 1,
        "completed_on_time": 0,
        "completed_late": 1,
        "not_completed": 0,
        "on_time_rate": 0.0,
        "lateness_hours_median": 24.0,
        "lateness_hours_p90": 24.0,
        # E1 enrolled Jan 1 00:00, t12 started Jan 26 06:00 -> 25 days 6 h
        "first_action_enrollments": 1,
        "first_action_hours_median": 606.0,
    },
    "wound_care": {
        **ZERO,
        # t1, t2, t3 due (t4 cancelled, t5 before the window)
        "due": 3,
        "completed_on_time": 1,
        "completed_late": 1,
        "not_completed": 1,
        "on_time_rate": 0.3333,
        "cancelled": 1,
        "overdue_open": 1,
        "overdue_age_hours_avg": 564.0,
        "overdue_age_hours_max": 564.0,
        # lateness [0, 4] -> median 2, p90 3.6
        "lateness_hours_median": 2.0,
        "lateness_hours_p90": 3.6,
        "escalated": 1,
        # E1: t1 started Jan 5 09:00 -> 4 days 9 h (E3 was enrolled before the window)
        "first_action_enrollments": 1,
        "first_action_hours_median": 105.0,
    },
}


# Not marked postgres: it runs on whichever database the suite has, so the embedded SQLite fallback is checked
# too (run the suite without PostgreSQL to exercise it).
def test_adherence_by_prong_matches_the_hand_computed_answers(dataset, auditor: User) -> None:
    window = adherence_window(start=START, end=AS_OF, now=AS_OF)
    rows = {row.pop("group"): row for row in adherence_by(user=auditor, group_by="prong", window=window)}
    assert rows == EXPECTED_BY_PRONG


@pytest.mark.postgres
def test_adherence_by_role_splits_the_calcium_prong_between_dialysis_nursing_and_nephrology(
    dataset, auditor: User
) -> None:
    window = adherence_window(start=START, end=AS_OF, now=AS_OF)
    rows = {row["group"]: row for row in adherence_by(user=auditor, group_by="role", window=window)}
    assert set(rows) == {"dialysis_nursing", "hyperbaric_medicine", "nephrology", "wound_nursing"}
    dialysis = rows["dialysis_nursing"]
    # t6, t7, t8, t9, t14: on time t6, t9; late t7; failed t8; missed t14
    assert (dialysis["due"], dialysis["completed_on_time"], dialysis["completed_late"], dialysis["not_completed"]) == (
        5,
        2,
        1,
        2,
    )
    assert dialysis["on_time_rate"] == 0.4
    assert (dialysis["missed"], dialysis["sts_doses_missed"]) == (1, 1)
    nephrology = rows["nephrology"]
    # t10 only (t11 is due after the window): open and 252 h overdue
    assert (nephrology["due"], nephrology["overdue_open"], nephrology["overdue_age_hours_max"]) == (1, 1, 252.0)
    assert nephrology["lab_rechecks_due"] == 1 and nephrology["lab_rechecks_on_time"] == 0
    assert rows["wound_nursing"] | {"group": "wound_care"} == {"group": "wound_care", **EXPECTED_BY_PRONG["wound_care"]}


@pytest.mark.postgres
def test_adherence_by_enrollment_site_and_template(dataset, auditor: User, admin_user: User) -> None:
    window = adherence_window(start=START, end=AS_OF, now=AS_OF)
    by_enrollment = {r["group"]: r for r in adherence_by(user=auditor, group_by="enrollment", window=window)}
    e1, e2 = dataset["e1"], dataset["e2"]
    assert set(by_enrollment) == {e1.pk, e2.pk}
    assert by_enrollment[e1.pk]["patient"] == dataset["p1"].pk
    assert (by_enrollment[e1.pk]["due"], by_enrollment[e1.pk]["completed_on_time"]) == (4, 1)
    assert (by_enrollment[e2.pk]["due"], by_enrollment[e2.pk]["completed_on_time"]) == (6, 2)
    by_site = {r["group"]: r for r in adherence_by(user=auditor, group_by="site", window=window)}
    assert set(by_site) == {"chi"} and by_site["chi"]["due"] == 10
    # The admin also sees the other site's one on-time task.
    admin_sites = {r["group"]: r for r in adherence_by(user=admin_user, group_by="site", window=window)}
    assert admin_sites["nyc"]["due"] == 1 and admin_sites["nyc"]["on_time_rate"] == 1.0
    by_template = {r["group"]: r for r in adherence_by(user=auditor, group_by="template", window=window)}
    assert by_template["sodium-thiosulfate"]["due"] == 4
    assert by_template["sodium-thiosulfate"]["sts_doses_missed"] == 1
    assert by_template["(ad hoc)"]["due"] == 4  # t1, t2, t3, t12 have no template


@pytest.mark.postgres
def test_the_api_answers_the_same_numbers_and_the_csv_matches_the_json(dataset, auditor: User) -> None:
    client = client_for(auditor)
    query = "group_by=prong&start=2026-01-01&end=2026-01-31T00:00:00Z"
    with time_machine.travel(AS_OF, tick=False):
        data = client.get(f"/api/v1/adherence/?{query}").json()
        response = client.get(f"/api/v1/adherence/?{query}&format=csv")
    assert {row.pop("group"): row for row in data["results"]} == EXPECTED_BY_PRONG
    assert data["totals"]["due"] == 10 and data["totals"]["completed_on_time"] == 3
    assert (data["totals"]["missed"], data["totals"]["sts_doses_missed"]) == (1, 1)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["group"] for r in rows] == sorted(EXPECTED_BY_PRONG)
    for row in rows:
        expected = EXPECTED_BY_PRONG[row.pop("group")]
        assert row == {k: "" if v is None else str(v) for k, v in expected.items()}


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group_by=patient", "group_by"),
        ("start=2026-02-01&end=2026-01-01", "start"),
        ("start=yesterday", "start"),
        ("group_by=prong&colour=red", "colour"),
    ],
)
def test_bad_report_parameters_are_a_400(dataset, auditor: User, query: str, field: str) -> None:
    response = client_for(auditor).get(f"/api/v1/adherence/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.postgres
def test_a_specialist_cannot_read_adherence(dataset, wound_nurse: User) -> None:
    assert client_for(wound_nurse).get("/api/v1/adherence/").status_code == 403


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """The textbook definition PostgreSQL's percentile_cont implements: sort, then interpolate linearly at
    position fraction * (n - 1)."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.fixture
def lateness_groups(pathway, site) -> dict[str, list[int]]:
    """Completed tasks with seeded random lateness in whole minutes (0 = on time) in groups of awkward sizes,
    one role per group; plus open and cancelled tasks, which must not count."""
    rng = random.Random(20261121)
    enrollment = _enrol(PatientFactory(site=site), pathway, at(1, 0))
    roles = [Role.WOUND_NURSING, Role.NEPHROLOGY, Role.DIALYSIS_NURSING, Role.PHARMACY, Role.DERMATOLOGY]
    sizes = [1, 2, 3, 10, 97]
    groups: dict[str, list[int]] = {}
    rows = []
    for role, size in zip(roles, sizes, strict=True):
        minutes = [0 if rng.random() < 0.4 else rng.randint(1, 5000) for _ in range(size)]
        groups[role] = minutes
        for m in minutes:
            due = at(rng.randint(2, 28), rng.randint(0, 23))
            # Seconds inside the minute: lateness counts whole minutes, rounded up.
            done = (
                due + dt.timedelta(minutes=m) - dt.timedelta(seconds=rng.randint(1, 59) if m else rng.randint(0, 600))
            )
            rows.append((role, due, TaskStatus.COMPLETED, done))
        rows.append((role, at(3), TaskStatus.REQUESTED, None))
        rows.append((role, at(4), TaskStatus.CANCELLED, None))
    Task.objects.bulk_create(
        Task(
            enrollment=enrollment, title="synthetic", prong=Prong.SUPPORT, role=role, status=status,
            available_at=due - dt.timedelta(hours=1), due_at=due, completed_at=done,
        )
        for role, due, status, done in rows
    )  # fmt: skip
    return groups


# Not marked postgres: the histogram SQL runs on either database.
def test_lateness_percentiles_equal_percentile_cont_over_the_minutes(lateness_groups, auditor: User) -> None:
    window = adherence_window(start=START, end=AS_OF, now=AS_OF)
    rows = {row["group"]: row for row in adherence_by(user=auditor, group_by="role", window=window)}
    assert set(rows) == set(lateness_groups)
    for role, minutes in lateness_groups.items():
        row = rows[role]
        assert row["completed_on_time"] == minutes.count(0)
        assert row["completed_late"] == len(minutes) - minutes.count(0)
        for field, fraction in (("lateness_hours_median", 0.5), ("lateness_hours_p90", 0.9)):
            expected = percentile_cont([m / 60 for m in minutes], fraction)
            assert expected is not None
            assert row[field] == round(expected, 2), (role, field)


@pytest.mark.postgres
def test_lateness_percentiles_equal_postgresqls_own_percentile_cont(lateness_groups, auditor: User) -> None:
    """The same figures from PostgreSQL's percentile_cont over the same minutes (sorting every task)."""
    from django.db import connection

    window = adherence_window(start=START, end=AS_OF, now=AS_OF)
    rows = {row["group"]: row for row in adherence_by(user=auditor, group_by="role", window=window)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT role, percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY"
            " GREATEST(ceiling(date_part('epoch', completed_at - due_at) / 60), 0) / 60)"
            " FROM pathways_task WHERE status = 'completed' GROUP BY role"
        )
        reference = dict(cursor.fetchall())
    assert set(reference) == set(rows)
    for role, (median, p90) in reference.items():
        assert (rows[role]["lateness_hours_median"], rows[role]["lateness_hours_p90"]) == (
            round(median, 2),
            round(p90, 2),
        )


# Not marked postgres: PostgreSQL takes percentile_cont for the first-action median, SQLite the histogram SQL;
# both must give the textbook answer, ties included.
def test_first_action_median_per_role_on_random_enrollments(pathway, site, auditor: User) -> None:
    rng = random.Random(2611)
    roles = [Role.WOUND_NURSING, Role.NEPHROLOGY, Role.PHARMACY]
    expected: dict[str, list[float]] = {role: [] for role in roles}
    for i in range(40):  # 40, 26 and 13 enrollments: even and odd counts
        enrolled = at(1 + i % 20, i % 24)
        enrollment = _enrol(PatientFactory(site=site), pathway, enrolled)
        for role in roles[: 1 + i % 3]:
            # A few tasks per role; the earliest action counts. Offsets repeat on purpose (ties).
            offsets = [rng.choice([30, 60, 60, 90, 600, 1440, rng.randint(1, 20000)]) for _ in range(rng.randint(1, 3))]
            for offset in offsets:
                acted = enrolled + dt.timedelta(minutes=offset)
                _task(enrollment, prong=Prong.SUPPORT, role=role, due=acted, status=TaskStatus.COMPLETED, done=acted)
            expected[role].append(min(offsets) / 60)
    window = adherence_window(start=START, end=AS_OF, now=AS_OF)
    rows = {row["group"]: row for row in adherence_by(user=auditor, group_by="role", window=window)}
    for role, delays in expected.items():
        assert rows[role]["first_action_enrollments"] == len(delays)
        assert rows[role]["first_action_hours_median"] == round(percentile_cont(delays, 0.5) or 0, 2), role
