"""The patient page: who may open it, what it shows (prongs with actions, flags, labs with trend charts,
medication changes, timeline), a constant query count, its audit event, and the old board URL's redirect."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from pathways.choices import AuditAction
from pathways.models import Task
from pathways.services.medications import medication_change_record
from pathways.services.observations import ObservationInput, observations_record
from tests.api.conftest import World
from tests.web._specialist_fixtures import audit_event, login

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    ("role", "target", "status"),
    [
        ("coordinator", "patient", 200),
        ("auditor", "patient", 200),
        ("admin", "patient", 200),
        ("wound_nurse", "patient", 200),
        ("nephrologist", "patient", 404),  # not on this patient's care team
        ("nephrologist", "other_team_patient", 200),
        ("wound_nurse", "other_team_patient", 404),
        ("coordinator", "other_site_patient", 404),
        ("auditor", "other_site_patient", 404),
        ("wound_nurse", "other_site_patient", 404),
        ("nephrologist", "other_site_patient", 404),
        ("admin", "other_site_patient", 200),
        ("coordinator", "spare_patient", 200),  # registered, not enrolled yet
    ],
)
def test_who_may_open_which_patient_page(world: World, role: str, target: str, status: int) -> None:
    patient = getattr(world, target)
    response = login(world.users[role]).get(f"/patients/{patient.pk}/")
    assert response.status_code == status
    if status == 404:
        assert 'id="back-to-start"' in response.content.decode()  # the layout's 404, with a way back


def test_the_page_shows_the_prongs_with_actions_for_the_nurse(world: World) -> None:
    response = login(world.users["wound_nurse"]).get(f"/patients/{world.patient.pk}/")
    html = response.content.decode()
    for prong in ("wound_care", "oxygenation_blood_flow", "calcium_reduction", "support"):
        assert f'data-prong="{prong}"' in html
    assert f'<article id="task-{world.task.pk}"' in html
    assert f'id="claim-{world.task.pk}"' in html and 'name="view" value="card"' in html
    assert f"{world.patient.family_name}, {world.patient.given_name}" in html
    assert 'id="timeline"' in html and "Enrollment enrolled" in html
    event = audit_event(response)
    assert (event.action, event.entity_type, event.patient_id) == (AuditAction.READ, "patient", world.patient.pk)
    assert event.subtype == "workspace patient page"


def test_the_page_shows_flags_labs_with_trends_and_medication_changes(world: World) -> None:
    nurse = world.users["wound_nurse"]
    start = timezone.now() - dt.timedelta(days=10)
    for day, (calcium, phosphate) in enumerate([("9.0", "5.0"), ("9.8", "6.2"), ("10.6", "7.1")]):
        observations_record(
            enrollment_id=world.enrollment.pk,
            values=[
                ObservationInput("calcium", calcium, "mg/dL"),
                ObservationInput("phosphate", phosphate, "mg/dL"),
                ObservationInput("albumin", "3.4", "g/dL"),
                ObservationInput("pain_score", str(4 + day), ""),
            ],
            findings=[],
            note="",
            effective_at=start + dt.timedelta(days=3 * day),
            actor=world.users["coordinator"],
        )
    medication_change_record(
        enrollment_id=world.enrollment.pk,
        medication="calcium_binder",
        drug_name="calcium acetate 667 mg",
        kind="started",
        note="",
        effective_at=None,
        actor=world.users["coordinator"],
    )
    html = login(nurse).get(f"/patients/{world.patient.pk}/").content.decode()
    assert 'data-flag="ca-x-p-high"' in html
    for code in ("calcium", "phosphate", "corrected_calcium", "ca_x_p", "pain_score"):
        assert f'id="trend-{code}"' in html
    assert 'id="trend-pth"' not in html and "no value yet" in html  # nothing recorded: no chart, said in words
    assert "10.6 mg/dL" in html  # the latest calcium
    assert 'role="img"' in html and "3 values, from 9 to 10.6 mg/dL" in html  # a text alternative
    assert "calcium acetate 667 mg" in html
    assert "Current therapies: none recorded · risk medications: Calcium-based phosphate binder" in html


def test_the_page_shows_the_current_therapies_and_the_reasons_of_a_replan(world: World) -> None:
    from pathways.services.patients import patient_update

    patient_update(
        patient_id=world.patient.pk,
        actor=world.users["coordinator"],
        changes={"current_therapies": ["cinacalcet", "apixaban"], "dialysis_modality": "PD", "dialysis_days": []},
    )
    html = login(world.users["wound_nurse"]).get(f"/patients/{world.patient.pk}/").content.decode()
    assert "Current therapies: Cinacalcet (calcimimetic), Apixaban (anticoagulation)" in html
    assert "Enrollment task template ended (no longer applies)" in html
    assert "sodium-thiosulfate no longer applies: dialysis modality Hemodialysis -&gt; Peritoneal dialysis" in html


def _busy(world: World) -> None:
    """More of everything on the page: closed tasks, events, observations, other tasks of the nurse."""
    coordinator, nurse = world.users["coordinator"], world.users["wound_nurse"]
    tasks = list(Task.objects.filter(enrollment=world.enrollment)[:12])
    for index, task in enumerate(tasks):
        if index % 2:
            Task.objects.filter(pk=task.pk).update(status="completed", completed_at=timezone.now())
        else:
            Task.objects.filter(pk=task.pk).update(assignee=nurse, status="accepted")
    for day in range(5):
        observations_record(
            enrollment_id=world.enrollment.pk,
            values=[ObservationInput("calcium", f"9.{day}", "mg/dL"), ObservationInput("albumin", "3.6", "g/dL")],
            findings=[],
            note="",
            effective_at=timezone.now() - dt.timedelta(days=day + 1),
            actor=coordinator,
        )


@pytest.mark.parametrize("role", ["wound_nurse", "coordinator"])
def test_the_patient_page_query_count_does_not_grow(world: World, role: str, django_assert_max_num_queries) -> None:
    client = login(world.users[role])
    path = f"/patients/{world.patient.pk}/"
    client.get(path)
    # A fixed budget: each section is one statement (the precautions of issue 16 and the wound photographs of
    # issue 19 added one each); what must not happen is growth with the patient's history, checked below.
    with django_assert_max_num_queries(26) as quiet:
        client.get(path)
    _busy(world)
    with django_assert_max_num_queries(len(quiet.captured_queries)):
        response = client.get(path)
    assert response.status_code == 200


def test_the_old_board_url_redirects_to_the_patient_page_and_keeps_scope(world: World) -> None:
    client = login(world.users["wound_nurse"])
    response = client.get(f"/dashboard/patients/{world.patient.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/patients/{world.patient.pk}/"
    assert client.get(f"/dashboard/patients/{world.other_team_patient.pk}/").status_code == 404


def test_a_patient_without_an_enrollment_shows_an_empty_board(world: World) -> None:
    html = login(world.users["coordinator"]).get(f"/patients/{world.spare_patient.pk}/").content.decode()
    assert "not enrolled" in html and html.count('class="prong"') == 4


def test_a_missed_session_task_shows_as_missed_among_the_closed_ones_without_actions(world: World) -> None:
    from pathways.services.tasks import tasks_close_missed

    task = Task.objects.select_for_update().get(pk=world.task.pk)
    [task] = tasks_close_missed(tasks=[task], now=timezone.now(), reason="missed: not done by the end of its window")
    html = login(world.users["wound_nurse"]).get(f"/patients/{world.patient.pk}/").content.decode()
    card = html.split(f'<article id="task-{task.pk}"', 1)[1].split("</article>", 1)[0]
    assert "status-missed" in card and ">Missed</span>" in card
    assert f'id="claim-{task.pk}"' not in card  # closed work offers no actions
