"""Labs in over FHIR: the four real fixture Bundles, conditional create, untracked analytes, refusals."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from pathways.models import Flag, Observation, Task
from tests.fhir.conftest import FIXTURE_FILES, Fhir, fixture_bundle, lab, transaction_of

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int, int]:
    return Observation.objects.count(), Task.objects.count(), Flag.objects.count()


def measured(world: Any) -> dict[str, tuple[Decimal, str, Decimal | None, str]]:
    rows = Observation.objects.filter(enrollment=world.enrollment, inputs__isnull=True).exclude(
        code__in=["corrected_calcium", "ca_x_p"]
    )
    return {o.code: (o.value, o.unit, o.entered_value, o.entered_unit) for o in rows}


# (file, tracked values stored: code -> (canonical value, unit, as entered, entered unit), untracked LOINC codes)
EXPECTED = {
    "synthea-calcium-albumin.json": (
        {
            "calcium": (Decimal("9.0340"), "mg/dL", Decimal("9.0340"), "mg/dL"),
            "albumin": (Decimal("3.4177"), "g/dL", Decimal("3.4177"), "g/dL"),
        },
        [],
    ),
    "hl7-r4-ghp-calcium-phosphate-albumin-si.json": (
        {
            "calcium": (Decimal("9.5390"), "mg/dL", Decimal("2.38"), "mmol/L"),
            "phosphate": (Decimal("4.6455"), "mg/dL", Decimal("1.5"), "mmol/L"),
            "albumin": (Decimal("4.2"), "g/dL", Decimal("42"), "g/L"),
        },
        [],
    ),
    "il-lrc-calcium-urea-identified.json": (
        {"calcium": (Decimal("9"), "mg/dL", Decimal("9"), "mg/dL")},
        ["3094-0"],
    ),
    "us-core-calcium-low-creatinine.json": (
        {"calcium": (Decimal("7.7"), "mg/dL", Decimal("7.7"), "mg/dL")},
        ["2160-0"],
    ),
}


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_each_fixture_bundle_is_accepted_tracked_values_stored_untracked_acknowledged(world, name):
    bundle = fixture_bundle(name, patient_id=world.patient.pk)
    response = Fhir(world.users["coordinator"]).post("", bundle)
    assert response.status_code == 200, response.json()
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "transaction-response"
    expected, untracked = EXPECTED[name]
    assert measured(world) == expected
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses.count("201 Created") == len(expected)
    notes = [
        issue["diagnostics"]
        for e in body["entry"]
        if "outcome" in e["response"]
        for issue in e["response"]["outcome"]["issue"]
    ]
    assert len(notes) == len(untracked)
    for code in untracked:
        assert any(code in n and "not tracked" in n for n in notes)
    for entry in body["entry"]:
        if entry["response"]["status"] == "201 Created":
            assert entry["response"]["location"].startswith("Observation/")


def test_identified_bundle_sent_twice_changes_nothing(world):
    fhir = Fhir(world.users["coordinator"])
    bundle = fixture_bundle("il-lrc-calcium-urea-identified.json", patient_id=world.patient.pk)
    assert fhir.post("", bundle).status_code == 200
    before = counts()
    stored = Observation.objects.get(enrollment=world.enrollment, code="calcium")
    assert stored.source_identifier == "http://fhir.meuhedet.co.il/identifier/lab-result|1304421043-20230802-1337-3231"
    again = fhir.post("", bundle)
    assert again.status_code == 200
    assert counts() == before
    calcium = again.json()["entry"][0]["response"]
    assert calcium == {"status": "200 OK", "location": f"Observation/{stored.pk}"}


def test_conditional_create_of_one_observation_returns_the_stored_one(world):
    fhir = Fhir(world.users["coordinator"])
    resource = lab("17861-6", 9.4, "mg/dL", patient_id=world.patient.pk, identifier="ACC-1")
    first = fhir.post("Observation", resource)
    assert first.status_code == 201, first.json()
    assert first["Location"].endswith(f"/fhir/R4/Observation/{first.json()['id']}")
    before = counts()
    second = fhir.post("Observation", resource, HTTP_IF_NONE_EXIST="identifier=urn:lab:accession|ACC-1")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert counts() == before


@pytest.mark.parametrize("name", ["synthea-calcium-albumin.json", "hl7-r4-ghp-calcium-phosphate-albumin-si.json"])
def test_unidentified_panel_sent_twice_changes_nothing(world, name):
    fhir = Fhir(world.users["coordinator"])
    bundle = fixture_bundle(name, patient_id=world.patient.pk)
    assert fhir.post("", bundle).status_code == 200
    before = counts()
    assert fhir.post("", bundle).status_code == 200
    assert counts() == before


def test_untracked_observation_alone_is_acknowledged_not_stored(world):
    response = Fhir(world.users["coordinator"]).post(
        "Observation", lab("2160-0", 1, "mg/dL", patient_id=world.patient.pk)
    )
    assert response.status_code == 200
    issue = response.json()["issue"][0]
    assert issue["severity"] == "information" and "not tracked" in issue["diagnostics"]
    assert not Observation.objects.exists()


def test_upper_case_units_and_missing_ucum_code_are_accepted(world):
    fhir = Fhir(world.users["coordinator"])
    upper = lab("17861-6", 9.1, "MG/DL", patient_id=world.patient.pk)
    no_code = lab("1751-7", 38, "g/L", patient_id=world.patient.pk, ucum=False)
    assert fhir.post("", transaction_of(upper, no_code)).status_code == 200
    assert measured(world) == {
        "calcium": (Decimal("9.1"), "mg/dL", Decimal("9.1"), "mg/dL"),
        "albumin": (Decimal("3.8"), "g/dL", Decimal("38"), "g/L"),
    }


def _without(resource: dict[str, Any], *keys: str) -> dict[str, Any]:
    copied = copy.deepcopy(resource)
    for key in keys:
        copied.pop(key)
    return copied


def bad_resources(patient_id: int) -> list[tuple[str, dict[str, Any], int, str]]:
    """(what is wrong, the resource, the status, the element the OperationOutcome names)."""
    good = lab("17861-6", 9.4, "mg/dL", patient_id=patient_id)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    return [
        ("malformed value", good | {"valueQuantity": {"value": "nine"}}, 400, "Observation.valueQuantity.value"),
        ("unknown element", good | {"colour": "red"}, 400, "Observation.colour"),
        (
            "unknown code system",
            good | {"code": {"coding": [{"system": "http://snomed.info/sct", "code": "71878006"}]}},
            422,
            "Observation.code",
        ),
        (
            "invalid LOINC code",
            good | {"code": {"coding": [{"system": "http://loinc.org", "code": "17861-5"}]}},
            422,
            "Observation.code.coding[0].code",
        ),
        (
            "mass unit for a molar code",
            lab("2000-8", 9.4, "mg/dL", patient_id=patient_id),
            422,
            "Observation.valueQuantity.code",
        ),
        ("unknown unit", lab("17861-6", 9.4, "mg", patient_id=patient_id), 422, "Observation.valueQuantity.code"),
        ("missing subject", _without(good, "subject"), 422, "Observation.subject"),
        ("missing effective time", _without(good, "effectiveDateTime"), 422, "Observation.effectiveDateTime"),
        ("date without time", good | {"effectiveDateTime": "2025-11-28"}, 422, "Observation.effectiveDateTime"),
        ("future effective time", good | {"effectiveDateTime": future}, 422, "Observation.effectiveDateTime"),
        (
            "implausible value",
            lab("17861-6", 94, "mg/dL", patient_id=patient_id),
            422,
            "Observation.valueQuantity.value",
        ),
        ("missing value", _without(good, "valueQuantity"), 422, "Observation.valueQuantity"),
    ]


def test_each_bad_resource_is_an_operation_outcome_naming_the_element_and_stores_nothing(world):
    fhir = Fhir(world.users["coordinator"])
    for label, resource, status, element in bad_resources(world.patient.pk):
        response = fhir.post("Observation", resource)
        assert response.status_code == status, (label, response.json())
        body = response.json()
        assert body["resourceType"] == "OperationOutcome", label
        assert element in body["issue"][0]["expression"], (label, body)
        assert counts()[0] == 0, label


def test_one_bad_entry_fails_the_whole_transaction_naming_its_entry(world):
    good = lab("17861-6", 9.4, "mg/dL", patient_id=world.patient.pk)
    bad = lab("14879-1", 1.2, "mg/dL", patient_id=world.patient.pk)
    before = counts()
    response = Fhir(world.users["coordinator"]).post("", transaction_of(good, bad))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.valueQuantity.code"]
    assert counts() == before


def test_a_batch_answers_per_entry(world):
    good = lab("17861-6", 9.4, "mg/dL", patient_id=world.patient.pk)
    bad = lab("14879-1", 1.2, "mg/dL", patient_id=world.patient.pk)
    response = Fhir(world.users["coordinator"]).post("", transaction_of(good, bad, kind="batch"))
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith("422")
    assert entries[1]["response"]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[1].resource.valueQuantity.code"
    ]
    assert list(Observation.objects.values_list("code", flat=True)) == ["calcium"]


def test_subject_by_mrn_identifier_and_other_sites_patient_is_404(world):
    fhir = Fhir(world.users["coordinator"])
    by_mrn = lab("17861-6", 9.4, "mg/dL", patient_id=0)
    by_mrn["subject"] = {
        "identifier": {"system": f"urn:carepath:site:{world.site.code}:mrn", "value": world.patient.mrn}
    }
    assert fhir.post("Observation", by_mrn).status_code == 201
    assert Observation.objects.filter(enrollment=world.enrollment, code="calcium").count() == 1
    other = lab("17861-6", 9.4, "mg/dL", patient_id=world.other_site_patient.pk)
    response = fhir.post("Observation", other)
    assert response.status_code == 404
    assert response.json()["issue"][0]["expression"] == ["Observation.subject"]
    assert not Observation.objects.filter(enrollment=world.other_site_enrollment).exists()


def test_anonymous_is_401_and_auditor_cannot_record(world):
    resource = lab("17861-6", 9.4, "mg/dL", patient_id=world.patient.pk)
    anonymous = Fhir(None).post("Observation", resource)
    assert anonymous.status_code == 401 and anonymous.json()["resourceType"] == "OperationOutcome"
    auditor = Fhir(world.users["auditor"]).post("Observation", resource)
    assert auditor.status_code == 403 and auditor.json()["resourceType"] == "OperationOutcome"
    assert not Observation.objects.exists()


def test_not_json_is_a_400_operation_outcome(world):
    response = Fhir(world.users["coordinator"]).client.post(
        "/fhir/R4/Observation", "{not json", content_type="application/fhir+json"
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_the_same_result_twice_under_two_identifiers_is_stored_once_and_created_once(world, kind):
    # A lab repeating one result in a Bundle, each copy with its own accession: the user test's 500 (the service
    # stored one row, and the FHIR layer expected two). The first copy is created, the second is that row.
    fhir = Fhir(world.users["coordinator"])
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    copies = [lab("2000-8", 2.5, "mmol/L", patient_id=world.patient.pk, effective=at, identifier=i) for i in "AB"]
    before = counts()
    response = fhir.post("", transaction_of(*copies, kind=kind))
    assert response.status_code == 200, response.content
    stored = Observation.objects.get(enrollment=world.enrollment, code="calcium")
    assert [e["response"] for e in response.json()["entry"]] == [
        {"status": "201 Created", "location": f"Observation/{stored.pk}"},
        {"status": "200 OK", "location": f"Observation/{stored.pk}"},
    ]
    assert counts()[0] == before[0] + 1


def test_a_stored_result_resent_under_a_new_identifier_is_not_created_again(world):
    fhir = Fhir(world.users["coordinator"])
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    first = fhir.post("Observation", lab("2000-8", 2.5, "mmol/L", patient_id=world.patient.pk, effective=at))
    assert first.status_code == 201
    before = counts()
    resent = lab("2000-8", 2.5, "mmol/L", patient_id=world.patient.pk, effective=at, identifier="NEW-1")
    again = fhir.post("Observation", resent)
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    in_bundle = fhir.post("", transaction_of(resent))
    assert in_bundle.json()["entry"][0]["response"] == {
        "status": "200 OK",
        "location": f"Observation/{first.json()['id']}",
    }
    assert counts() == before
