"""Lab results that arrive more than once (issue 12, section 3), and the derived-value window's edge (section 4).

A resent result (same enrollment, code, value, unit and effective time) is the same measurement: the API answers
200 with the stored observation and nothing is written or run. Derived values are stored once per effective
time and inputs. The unique constraint makes a copy impossible, also for two identical results at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from pathways.choices import TaskStatus
from pathways.models import Assessment, Enrollment, Flag, Observation, RuleFiring, Task, TaskEvent
from pathways.services.observations import (
    ObservationInput,
    clinical_data_record,
    observation_record,
    observations_record,
)
from pathways.services.tasks import task_transition
from tests.clinical.conftest import ENROLLED_AT

pytestmark = pytest.mark.postgres

AT = ENROLLED_AT + dt.timedelta(hours=2)
NOW = ENROLLED_AT + dt.timedelta(hours=3)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _counts() -> dict[str, int]:
    return {
        "observations": Observation.objects.count(),
        "tasks": Task.objects.count(),
        "task_events": TaskEvent.objects.count(),
        "firings": RuleFiring.objects.count(),
        "flags": Flag.objects.count(),
        "assessments": Assessment.objects.count(),
    }


def _post_phosphate(client: APIClient, enrollment: Enrollment, value: str = "6.5", at: dt.datetime = AT) -> Any:
    body = {
        "enrollment": enrollment.pk,
        "values": [{"code": "phosphate", "value": value, "unit": "mg/dL", "effective_at": at.isoformat()}],
    }
    return client.post("/api/v1/observations/", body, format="json")


def test_a_resent_phosphate_after_its_task_was_completed_answers_200_with_the_stored_row_and_makes_no_work(
    enrollment, coordinator
) -> None:
    client = _client(coordinator)
    first = _post_phosphate(client, enrollment)
    assert first.status_code == 201, first.content
    (stored,) = first.json()["observations"]
    (task_id,) = first.json()["tasks_created"]
    for step in (TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED):
        task_transition(task_id=task_id, to_status=step, actor=None, expected_version=None)
    before = _counts()

    again = _post_phosphate(client, enrollment)

    assert again.status_code == 200, again.content
    body = again.json()
    assert [o["id"] for o in body["observations"]] == [stored["id"]]
    assert body["observations"][0] == stored
    assert body["already_stored"] == [stored["id"]]
    assert (body["tasks_created"], body["firings"], body["flags_raised"]) == ([], [], [])
    assert _counts() == before


def test_the_same_value_written_differently_is_the_same_measurement(enrollment, coordinator) -> None:
    client = _client(coordinator)
    assert _post_phosphate(client, enrollment, "6.5").status_code == 201
    # Stored as numeric(14, 4): 6.5 and 6.5000 are one value.
    response = _post_phosphate(client, enrollment, "6.5000")
    assert response.status_code == 200
    # The same instant written with another offset is the same effective time.
    response = _post_phosphate(client, enrollment, "6.5", AT.astimezone(dt.timezone(dt.timedelta(hours=-6))))
    assert response.status_code == 200
    assert Observation.objects.filter(code="phosphate").count() == 1


def test_another_value_or_another_time_is_a_new_measurement(enrollment, coordinator) -> None:
    client = _client(coordinator)
    assert _post_phosphate(client, enrollment, "6.5").status_code == 201
    assert _post_phosphate(client, enrollment, "6.6").status_code == 201
    assert _post_phosphate(client, enrollment, "6.5", AT + dt.timedelta(seconds=1)).status_code == 201
    assert Observation.objects.filter(code="phosphate").count() == 3


def test_a_panel_with_one_resent_and_one_new_value_stores_and_evaluates_only_the_new_one(enrollment) -> None:
    first = observation_record(
        enrollment_id=enrollment.pk, code="phosphate", value="6.5", unit="mg/dL", effective_at=AT, actor=None, now=NOW
    )
    (phosphate,) = first.observations
    result = observations_record(
        enrollment_id=enrollment.pk,
        values=[ObservationInput("phosphate", "6.5", "mg/dL", AT), ObservationInput("pain_score", "8", None, AT)],
        actor=None,
        now=NOW,
    )
    assert result.wrote_anything
    assert [o.code for o in result.observations] == ["phosphate", "pain_score"]
    assert result.observations[0].pk == phosphate.pk
    assert result.already_stored == [phosphate]
    # Only the pain score ran the rules: no second phosphate firing, not even a task_linked one.
    assert {f.rule_code for f in result.firings} == {"pain-uncontrolled"}
    assert RuleFiring.objects.filter(rule_code="high-phosphate-or-calcium").count() == 1


def test_the_same_value_twice_in_one_panel_is_stored_once(enrollment) -> None:
    result = observations_record(
        enrollment_id=enrollment.pk,
        values=[ObservationInput("phosphate", "6.5", "mg/dL", AT), ObservationInput("phosphate", "6.5", "mg/dL", AT)],
        actor=None,
        now=NOW,
    )
    assert len(result.observations) == 1
    assert result.already_stored == []
    assert Observation.objects.filter(code="phosphate").count() == 1
    assert Task.objects.filter(rule_code="high-phosphate-or-calcium").count() == 1


def test_a_panel_sent_value_by_value_stores_each_derived_value_once_per_time_and_inputs(enrollment) -> None:
    def record(*values: tuple[str, str, str]) -> Any:
        return observations_record(
            enrollment_id=enrollment.pk,
            values=[ObservationInput(code, value, unit, AT) for code, value, unit in values],
            actor=None,
            now=NOW,
        )

    # Corrected calcium 7.5 + 0.8 x (4.0 - 3.5) = 7.9: low.
    first = record(("calcium", "7.5", "mg/dL"), ("albumin", "3.5", "g/dL"))
    (corrected,) = first.derived
    assert corrected.value == Decimal("7.9000")
    assert {f.rule_code for f in first.firings} >= {"low-calcium"}
    # The phosphate of the same panel arrives on its own: Ca x P is new, corrected calcium is the same one.
    second = record(("phosphate", "4.0", "mg/dL"))
    assert [o.code for o in second.derived] == ["corrected_calcium", "ca_x_p"]
    assert second.derived[0].pk == corrected.pk
    assert second.already_stored == [corrected]
    # And the whole panel is resent twice.
    for _ in range(2):
        resent = record(("calcium", "7.5", "mg/dL"), ("albumin", "3.5", "g/dL"), ("phosphate", "4.0", "mg/dL"))
        assert not resent.wrote_anything
    assert Observation.objects.filter(code="corrected_calcium").count() == 1
    assert Observation.objects.filter(code="ca_x_p").count() == 1
    # The unchanged corrected calcium did not fire low-calcium again.
    assert RuleFiring.objects.filter(rule_code="low-calcium").count() == 1


def test_a_derived_value_with_the_same_number_from_other_inputs_is_stored_with_those_inputs(enrollment) -> None:
    def record(code: str, value: str, unit: str, at: dt.datetime) -> Any:
        return observation_record(
            enrollment_id=enrollment.pk, code=code, value=value, unit=unit, effective_at=at, actor=None, now=NOW
        )

    first_calcium = record("calcium", "9.0", "mg/dL", AT - dt.timedelta(hours=2)).observations[0]
    (a,) = record("albumin", "3.5", "g/dL", AT).derived
    second_calcium = record("calcium", "9.0", "mg/dL", AT - dt.timedelta(hours=1)).observations[0]
    # The phosphate at AT derives again as of AT, now from the newer calcium: same number, other inputs.
    b = record("phosphate", "4.0", "mg/dL", AT).derived[0]
    assert (a.code, a.value, a.effective_at) == (b.code, b.value, b.effective_at)
    assert a.pk != b.pk
    assert a.inputs.get(code="calcium").pk == first_calcium.pk
    assert b.inputs.get(code="calcium").pk == second_calcium.pk


def test_the_database_refuses_a_second_copy_of_a_measurement(enrollment) -> None:
    row = {"enrollment": enrollment, "code": "phosphate", "value": Decimal("6.5"), "unit": "mg/dL"}
    Observation.objects.create(**row, effective_at=AT, recorded_at=NOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.objects.create(**row, effective_at=AT, recorded_at=NOW + dt.timedelta(minutes=1))


# --- at the same moment -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_identical_results_posted_at_once_give_one_observation_and_one_task(enrollment, coordinator) -> None:
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    lock = threading.Lock()

    def post() -> None:
        try:
            client = _client(coordinator)
            barrier.wait(timeout=10)
            response = _post_phosphate(client, enrollment)
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [200, 201]
    assert Observation.objects.filter(enrollment=enrollment, code="phosphate").count() == 1
    assert Task.objects.filter(enrollment=enrollment, rule_code="high-phosphate-or-calcium").count() == 1


def _waiting_on_a_lock(timeout: float = 10) -> bool:
    """Whether another backend is blocked on a lock (the second insert waiting on the first's unique key)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_writer_racing_past_the_lookup_reuses_the_row_the_constraint_kept(enrollment) -> None:
    """Without the enrollment lock, the second insert waits on the first's key and then finds the stored row:
    the savepoint turns the unique violation into a reuse, not an aborted transaction or a 500."""
    first_inserted, commit_first = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def first_writer() -> None:
        try:
            with transaction.atomic():
                outcome["kept"] = Observation.objects.create(
                    enrollment=enrollment,
                    code="phosphate",
                    value=Decimal("6.5"),
                    unit="mg/dL",
                    effective_at=AT,
                    recorded_at=NOW,
                )
                first_inserted.set()
                commit_first.wait(timeout=20)
        finally:
            connection.close()

    def second_writer() -> None:
        try:
            first_inserted.wait(timeout=10)
            with transaction.atomic():
                # No select_for_update of the enrollment here: the lookup cannot see the uncommitted row.
                outcome["result"] = clinical_data_record(
                    enrollment=Enrollment.objects.get(pk=enrollment.pk),
                    values=[ObservationInput("phosphate", "6.5", "mg/dL", AT)],
                    effective_at=None,
                    actor=None,
                    now=NOW,
                )
        except Exception as exc:  # reported below; a thread's exception would otherwise vanish
            outcome["error"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=first_writer), threading.Thread(target=second_writer)]
    for thread in threads:
        thread.start()
    blocked = _waiting_on_a_lock()
    commit_first.set()
    for thread in threads:
        thread.join(timeout=30)

    assert blocked, "the second insert never waited on the first: the race was not exercised"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert [o.pk for o in result.observations] == [outcome["kept"].pk]
    assert result.already_stored == result.observations
    assert not result.wrote_anything
    assert Observation.objects.filter(code="phosphate").count() == 1
    assert Task.objects.filter(rule_code="high-phosphate-or-calcium").count() == 0


# --- the derived-value window's edge (issue 12, section 4) --------------------------------------------------


@pytest.mark.parametrize(
    ("albumin_age", "derived"),
    [
        (dt.timedelta(hours=72), True),  # "no older than 72 h": exactly 72 h old is used
        (dt.timedelta(hours=72, microseconds=1), False),
    ],
)
def test_the_derived_value_window_includes_an_input_exactly_72_hours_old(
    enrollment, settings, albumin_age: dt.timedelta, derived: bool
) -> None:
    settings.CAREPATH = {**settings.CAREPATH, "DERIVED_WINDOW_HOURS": 72}
    calcium_at = AT + dt.timedelta(hours=80)
    observation_record(
        enrollment_id=enrollment.pk,
        code="albumin",
        value="3.0",
        unit="g/dL",
        effective_at=calcium_at - albumin_age,
        actor=None,
        now=calcium_at,
    )
    result = observation_record(
        enrollment_id=enrollment.pk,
        code="calcium",
        value="9.0",
        unit="mg/dL",
        effective_at=calcium_at,
        actor=None,
        now=calcium_at,
    )
    assert [o.code for o in result.derived] == (["corrected_calcium"] if derived else [])


# --- copies stored before the constraint (migration 0009) -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_0009_merges_copies_into_the_first_row_and_keeps_what_pointed_at_them(enrollment) -> None:
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("pathways", "0008_task_report_index_narrower")], [("pathways", "0009_observation_dedupe")]
    phosphate = observation_record(
        enrollment_id=enrollment.pk, code="phosphate", value="6.5", unit="mg/dL", effective_at=AT, actor=None, now=NOW
    )
    (first_phosphate,) = phosphate.observations
    panel = observations_record(
        enrollment_id=enrollment.pk,
        values=[ObservationInput("calcium", "9.0", "mg/dL", AT), ObservationInput("albumin", "3.5", "g/dL", AT)],
        actor=None,
        now=NOW,
    )
    first_calcium, albumin = panel.observations
    first_corrected, product = panel.derived  # corrected calcium, and Ca x P with the phosphate

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldObservation = old.get_model("pathways", "Observation")
        OldFlag, OldRuleFiring = old.get_model("pathways", "Flag"), old.get_model("pathways", "RuleFiring")

        def copy(row: Observation) -> Any:
            return OldObservation.objects.create(
                enrollment_id=row.enrollment_id,
                code=row.code,
                value=row.value,
                unit=row.unit,
                effective_at=row.effective_at,
                recorded_at=row.recorded_at + dt.timedelta(minutes=5),
            )

        phosphate_copy, calcium_copy, corrected_copy = copy(first_phosphate), copy(first_calcium), copy(first_corrected)
        corrected_copy.inputs.set([calcium_copy.pk, albumin.pk])
        firing = phosphate.firings[0]
        OldRuleFiring.objects.create(
            enrollment_id=enrollment.pk,
            rule_id=firing.rule_id,
            rule_code=firing.rule_code,
            outcome=firing.outcome,
            observation=phosphate_copy,
            fired_at=NOW,
        )
        OldFlag.objects.create(
            enrollment_id=enrollment.pk,
            code="copy-flag",
            rule_code="ca-x-p-flag",
            message="raised by a copy",
            source_observation=phosphate_copy,
            raised_at=NOW,
        )
        assert OldObservation.objects.count() == 8
    finally:
        MigrationExecutor(connection).migrate(after)
        # Forward again to the latest state, so the tests after this one find every later table and column.
        latest = MigrationExecutor(connection)
        latest.migrate(latest.loader.graph.leaf_nodes())

    assert set(Observation.objects.values_list("pk", flat=True)) == {
        first_phosphate.pk,
        first_calcium.pk,
        albumin.pk,
        first_corrected.pk,
        product.pk,
    }
    assert RuleFiring.objects.filter(rule_code=firing.rule_code, observation=first_phosphate).count() == 2
    assert Flag.objects.get(code="copy-flag").source_observation_id == first_phosphate.pk
    first_corrected.refresh_from_db()
    assert set(first_corrected.inputs.values_list("pk", flat=True)) == {first_calcium.pk, albumin.pk}
    assert first_corrected.inputs_key == ",".join(str(pk) for pk in sorted([first_calcium.pk, albumin.pk]))
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.objects.create(
            enrollment=enrollment,
            code="phosphate",
            value=Decimal("6.5"),
            unit="mg/dL",
            effective_at=AT,
            recorded_at=NOW,
        )


# --- a panel in two statements ----------------------------------------------------------------------------------


def _row(enrollment: Enrollment, value: str, *, identifier: str | None = None) -> Observation:
    return Observation(
        enrollment=enrollment,
        code="phosphate",
        value=Decimal(value),
        unit="mg/dL",
        effective_at=AT,
        recorded_at=NOW,
        source_identifier=identifier,
    )


def test_a_panel_is_stored_with_one_select_and_one_insert_and_answers_as_value_by_value(enrollment) -> None:
    from django.test.utils import CaptureQueriesContext

    from pathways.services.observations import _store_many

    stored = _row(enrollment, "6.5")
    stored.save()
    new, repeated = _row(enrollment, "7.0"), _row(enrollment, "7.0")
    with CaptureQueriesContext(connection) as queries:
        answer = _store_many([_row(enrollment, "6.5"), new, repeated])
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [s for s in statements if s in {"SELECT", "INSERT"}] == ["SELECT", "INSERT"], statements
    assert [(row.pk, created) for row, created in answer] == [(stored.pk, False), (new.pk, True), (new.pk, False)]
    assert sorted(Observation.objects.values_list("value", flat=True)) == [Decimal("6.5"), Decimal("7.0")]


def test_a_panel_whose_insert_meets_a_unique_constraint_falls_back_to_one_row_at_a_time(enrollment) -> None:
    from pathways.services.observations import _store_many

    # The lab's accession already names another value: the bulk INSERT fails on the identifier constraint, and
    # the row-by-row path gives the same answer it always gave (the clash is not silently swallowed).
    _row(enrollment, "6.5", identifier="lab|A1").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        _store_many([_row(enrollment, "7.5"), _row(enrollment, "7.0", identifier="lab|A1")])
    assert list(Observation.objects.values_list("value", flat=True)) == [Decimal("6.5")]
