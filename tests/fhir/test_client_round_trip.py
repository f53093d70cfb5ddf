"""The round trip with a real FHIR client library (fhirpy's SyncFHIRClient) against a live server: read the
CapabilityStatement, page through a patient's open Tasks, post a lab panel in SI units, read back the
nephrology Task and the Ca x P Flag the rules raised, and post the same panel again: nothing new."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient

from pathways.choices import OPEN_TASK_STATUSES
from pathways.models import Flag, Observation, Task
from pathways.services.api_tokens import api_token_issue
from tests.fhir.test_read_search import high_panel

pytestmark = pytest.mark.postgres


def test_round_trip_with_fhirpy(transactional_db, live_server, world):
    _, key = api_token_issue(user=world.users["coordinator"])
    client = SyncFHIRClient(f"{live_server.url}/fhir/R4", authorization=f"Token {key}")
    patient = f"Patient/{world.patient.pk}"

    # 1. The CapabilityStatement.
    statement = client.execute("metadata", method="get")
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"

    # 2. The patient's open Tasks, three to a page, through the next links.
    open_statuses = ",".join(OPEN_TASK_STATUSES)
    tasks = client.resources("Task").search(patient=patient, status=open_statuses).limit(3).fetch_all()
    expected = set(
        Task.objects.filter(enrollment=world.enrollment, status__in=OPEN_TASK_STATUSES).values_list("pk", flat=True)
    )
    assert len(expected) > 3
    assert sorted(int(t["id"]) for t in tasks) == sorted(expected)

    # 3. A transaction: calcium and phosphate in mmol/L, albumin in g/L.
    response = client.execute("", method="post", data=high_panel(world.patient.pk))
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"] for e in response["entry"]] == ["201 Created"] * 3

    # 4. The nephrology Task and the Ca x P Flag the rules raised.
    nephrology = (
        client.resources("Task")
        .search(patient=patient, performer="urn:carepath:codesystem:role|nephrology", status="requested")
        .fetch_all()
    )
    titles = [t["description"] for t in nephrology]
    assert "High phosphate or calcium: nephrology review" in titles
    review = next(t for t in nephrology if t["description"].startswith("High phosphate"))
    assert review["priority"] == "urgent"
    assert [ref.reference for ref in review["basedOn"]] == [f"CarePlan/{world.enrollment.pk}"]
    flags = client.resources("Flag").search(patient=patient, status="active").fetch_all()
    assert [f["code"]["coding"][0]["code"] for f in flags] == ["ca-x-p-high"]
    read_back = client.reference("Task", review["id"]).to_resource()
    assert read_back["status"] == "requested"

    # 5. The same Bundle again: no new Observation, Task or Flag.
    before = (Observation.objects.count(), Task.objects.count(), Flag.objects.count())
    again = client.execute("", method="post", data=high_panel(world.patient.pk))
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 3
    assert (Observation.objects.count(), Task.objects.count(), Flag.objects.count()) == before
