"""The clinical API: posting labs makes work in the right specialists' queues; errors are 400/404 and write nothing."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from pathways.choices import Role
from pathways.models import Observation, Task
from pathways.services.enrollment import care_team_add, enrollment_apply
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.postgres


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def team(pathway, site, coordinator, nephrologist):
    enrollment = enrollment_apply(
        patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator
    )
    dietitian = UserFactory(roles=[Role.DIETETICS], sites=[site])
    care_team_add(enrollment_id=enrollment.pk, user=nephrologist, role=Role.NEPHROLOGY, actor=coordinator)
    care_team_add(enrollment_id=enrollment.pk, user=dietitian, role=Role.DIETETICS, actor=coordinator)
    return enrollment, dietitian


def test_posting_labs_puts_the_triggered_work_in_the_right_queues(team, coordinator, nephrologist) -> None:
    enrollment, dietitian = team
    response = _client(coordinator).post(
        "/api/v1/observations/",
        {
            "enrollment": enrollment.pk,
            "values": [
                {"code": "calcium", "value": "2.45", "unit": "mmol/L"},
                {"code": "albumin", "value": "32", "unit": "g/L"},
                {"code": "phosphate", "value": "2.1", "unit": "mmol/L"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {d["code"]: d["value"] for d in body["derived"]} == {"corrected_calcium": "10.4596", "ca_x_p": "68.0261"}
    assert {f["rule_code"] for f in body["firings"]} == {"high-phosphate-or-calcium", "ca-x-p-flag", "low-albumin"}

    nephrology_queue = {t["id"] for t in _client(nephrologist).get("/api/v1/queue/?limit=200").json()["results"]}
    dietitian_queue = {t["id"] for t in _client(dietitian).get("/api/v1/queue/?limit=200").json()["results"]}
    triggered = {t.rule_code: t.pk for t in Task.objects.filter(enrollment=enrollment).exclude(rule_code="")}
    assert triggered["high-phosphate-or-calcium"] in nephrology_queue
    assert triggered["low-albumin"] in dietitian_queue
    assert triggered["low-albumin"] not in nephrology_queue

    flags = _client(nephrologist).get(f"/api/v1/flags/?enrollment={enrollment.pk}&active=true").json()["results"]
    assert [(f["code"], f["active"]) for f in flags] == [("ca-x-p-high", True)]
    phosphate = _client(nephrologist).get(f"/api/v1/observations/?enrollment={enrollment.pk}&code=phosphate").json()
    assert [(o["value"], o["entered_value"], o["entered_unit"]) for o in phosphate["results"]] == [
        ("6.5037", "2.1000", "mmol/L")
    ]


def test_an_unknown_unit_is_a_400_that_says_why_and_nothing_is_stored(team, coordinator) -> None:
    enrollment, _ = team
    response = _client(coordinator).post(
        "/api/v1/observations/",
        {"enrollment": enrollment.pk, "values": [{"code": "pth", "value": "300", "unit": "mIU/mL"}]},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "accepted units: pg/mL, ng/L, pmol/L" in error["message"]
    assert not Observation.objects.exists()
    response = _client(coordinator).post(
        "/api/v1/observations/",
        {"enrollment": enrollment.pk, "values": [{"code": "pain_score", "value": "12"}]},
        format="json",
    )
    assert response.status_code == 400 and "accepted range 0-10" in response.json()["error"]["message"]
    assert not Observation.objects.exists()


def test_another_sites_enrollment_or_task_is_404(team, other_site, pathway) -> None:
    enrollment, _ = team
    outsider = UserFactory(roles=[Role.COORDINATOR], sites=[other_site])
    client = _client(outsider)
    response = client.post(
        "/api/v1/observations/",
        {"enrollment": enrollment.pk, "values": [{"code": "inr", "value": "2.5"}]},
        format="json",
    )
    assert response.status_code == 404
    task = Task.objects.filter(enrollment=enrollment).first()
    response = client.post("/api/v1/task-completions/", {"task": task.pk, "version": task.version}, format="json")
    assert response.status_code == 404
    response = client.post(
        "/api/v1/medication-changes/",
        {"enrollment": enrollment.pk, "medication": "warfarin", "drug_name": "warfarin 5 mg"},
        format="json",
    )
    assert response.status_code == 404
    assert client.get(f"/api/v1/observations/?enrollment={enrollment.pk}").json()["count"] == 0
    assert not Observation.objects.exists()
