"""PlanDefinition (timing, the dialysis-day extension, applicability, citations), CareTeam, and AuditEvent
(auditors only, scoped)."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.plandefinition import PlanDefinition

from pathways.models import AuditEvent, Enrollment, Task
from tests.fhir.conftest import Fhir

pytestmark = pytest.mark.django_db


def test_plan_definition_carries_timing_roles_conditions_and_citations(world):
    fhir = Fhir(world.users["wound_nurse"])
    body = fhir.get("PlanDefinition", url="urn:carepath:plandefinition:calciphylaxis", status="active").json()
    Bundle.model_validate(body)
    [entry] = body["entry"]
    plan = PlanDefinition.model_validate(entry["resource"])
    assert plan.version == str(world.pathway.version) and plan.status == "active"
    assert plan.relatedArtifact and all(a.type == "citation" for a in plan.relatedArtifact)
    actions = {a.id: a for a in plan.action}
    assert set(actions) == set(world.pathway.task_templates.values_list("code", flat=True))
    huddle = actions["team-huddle"]
    assert (huddle.timingTiming.repeat.period, huddle.timingTiming.repeat.periodUnit) == (7, "d")
    assert huddle.participant[0].role.coding[0].code == "nephrology"
    dialysis = actions["pain-score-dialysis"]
    assert [(e.url, e.valueBoolean) for e in dialysis.timingTiming.extension] == [
        ("urn:carepath:extension:dialysis-days", True)
    ]
    assert dialysis.condition[0].kind == "applicability"
    assert '"dialysis_modality": ["HD"]' in dialysis.condition[0].expression.expression
    expiry = {e.url: e.valueDuration for e in dialysis.extension}["urn:carepath:extension:expires-after"]
    assert (expiry.value, expiry.code) == (6, "h")
    assert "urn:carepath:extension:expires-after" not in {e.url for e in huddle.extension}
    dressing = actions["dressing-change"]
    assert dressing.timingTiming.extension[0].url == "urn:carepath:extension:after-completion"
    assert dressing.timingTiming.extension[0].valueDuration.value == 48
    debridement = actions["debridement-decision"]
    assert [(r.actionId, r.relationship) for r in debridement.relatedAction] == [("wound-assessment", "after-end")]
    assert huddle.documentation[0].citation.startswith("Mayo Clinic")


def test_care_plan_instantiates_the_plan_definition_version_and_care_team_lists_members(world):
    fhir = Fhir(world.users["coordinator"])
    care_plan = CarePlan.model_validate(fhir.get(f"CarePlan/{world.enrollment.pk}").json())
    canonical = care_plan.instantiatesCanonical[0]
    url, version = canonical.split("|")
    found = fhir.get("PlanDefinition", url=url, version=version).json()["entry"]
    assert [e["resource"]["id"] for e in found] == [str(world.pathway.pk)]
    team = CareTeam.model_validate(fhir.get(f"CareTeam/{world.enrollment.pk}").json())
    assert [(p.role[0].coding[0].code, p.member.reference) for p in team.participant] == [
        ("wound_nursing", f"Practitioner/{world.users['wound_nurse'].pk}")
    ]
    assert fhir.get(f"CareTeam/{world.other_site_enrollment.pk}").status_code == 404
    assert "entry" not in fhir.get("CareTeam", patient=world.other_site_patient.pk).json()


def test_audit_events_are_for_auditors_only_and_scoped(world):
    Fhir(world.users["coordinator"]).get(f"Task/{world.task.pk}")
    Fhir(world.users["admin"]).get(f"Task/{world.other_site_task.pk}")
    assert Fhir(world.users["coordinator"]).get("AuditEvent").status_code == 403
    assert Fhir(world.users["wound_nurse"]).get(f"AuditEvent/{AuditEvent.objects.first().pk}").status_code == 403
    auditor = Fhir(world.users["auditor"])
    body = auditor.get("AuditEvent", patient=world.patient.pk, agent=f"Practitioner/{world.users['coordinator'].pk}")
    assert body.status_code == 200
    events = [FhirAuditEvent.model_validate(e["resource"]) for e in body.json()["entry"]]
    assert events and all(e.agent[0].who.reference == f"Practitioner/{world.users['coordinator'].pk}" for e in events)
    assert any(ent.what.reference == f"Task/{world.task.pk}" for e in events for ent in e.entity or [])
    other = auditor.get("AuditEvent", patient=world.other_site_patient.pk).json()
    assert "entry" not in other


def test_apply_enrols_the_patient_and_answers_the_care_plan(world):
    fhir = Fhir(world.users["coordinator"])
    path = f"PlanDefinition/{world.pathway.pk}/$apply?subject=Patient/{world.spare_patient.pk}"
    response = fhir.client.post(f"/fhir/R4/{path}")
    assert response.status_code == 201, response.json()
    care_plan = CarePlan.model_validate(response.json())
    enrollment = Enrollment.objects.get(patient=world.spare_patient)
    assert care_plan.id == str(enrollment.pk) and care_plan.status == "active"
    assert response["Location"].endswith(f"/fhir/R4/CarePlan/{enrollment.pk}")
    assert Task.objects.filter(enrollment=enrollment).exists()
    event = AuditEvent.objects.get(subtype="fhir PlanDefinition $apply")
    assert event.action == "C" and event.patient_id == world.spare_patient.pk
    again = fhir.client.post(f"/fhir/R4/{path}")
    assert again.status_code == 409 and again.json()["resourceType"] == "OperationOutcome"
    assert Enrollment.objects.filter(patient=world.spare_patient).count() == 1


@pytest.mark.parametrize(
    ("who", "subject", "status"),
    [
        ("coordinator", "other_site_patient", 404),
        ("wound_nurse", "spare_patient", 404),
        ("coordinator", None, 400),
    ],
)
def test_apply_refusals_change_nothing(world, who, subject, status):
    before = Enrollment.objects.count()
    query = f"?subject=Patient/{getattr(world, subject).pk}" if subject else ""
    response = Fhir(world.users[who]).client.post(f"/fhir/R4/PlanDefinition/{world.pathway.pk}/$apply{query}")
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"
    assert Enrollment.objects.count() == before
