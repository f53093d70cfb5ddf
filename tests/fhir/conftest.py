"""FHIR fixtures: the API's small world (in-scope, other-site and other-team enrollments), the four fixture
Bundles from shared/fixtures/fhir-r4-examples with their placeholders filled, and a FHIR client helper."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from pathways.models import User
from tests.api.conftest import World, client_for, world  # noqa: F401  (the world fixture, shared)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "fhir-r4-examples"
if not FIXTURES.is_dir():  # the worktree sits at /work/wt-*, the shared folder at /work/shared
    FIXTURES = Path("/work/shared/fixtures/fhir-r4-examples")
FIXTURE_FILES = [
    "synthea-calcium-albumin.json",
    "hl7-r4-ghp-calcium-phosphate-albumin-si.json",
    "il-lrc-calcium-urea-identified.json",
    "us-core-calcium-low-creatinine.json",
]
FHIR_JSON = "application/fhir+json"


def fixture_bundle(name: str, *, patient_id: int, effective: dt.datetime | None = None) -> dict[str, Any]:
    """A fixture Bundle with {PATIENT_ID} and {EFFECTIVE} replaced (effective: an hour ago by default)."""
    effective = effective or (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)
    text = (FIXTURES / name).read_text(encoding="utf-8")
    text = text.replace("{PATIENT_ID}", str(patient_id)).replace("{EFFECTIVE}", effective.isoformat())
    data: dict[str, Any] = json.loads(text)
    return data


class Fhir:
    """A DRF test client speaking application/fhir+json to /fhir/R4/."""

    def __init__(self, user: User | None) -> None:
        self.client: APIClient = client_for(user)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/fhir/R4/{path}", params, HTTP_ACCEPT=FHIR_JSON)

    def post(self, path: str, body: Any, **headers: str) -> Any:
        return self.client.post(
            f"/fhir/R4/{path}", json.dumps(body), content_type=FHIR_JSON, HTTP_ACCEPT=FHIR_JSON, **headers
        )


@pytest.fixture
def fhir_as() -> Any:
    return Fhir


def lab(
    loinc: str,
    value: Any,
    unit: str | None,
    *,
    patient_id: int,
    effective: dt.datetime | None = None,
    identifier: str | None = None,
    ucum: bool = True,
) -> dict[str, Any]:
    """A minimal lab Observation (LOINC code, UCUM quantity)."""
    effective = effective or (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)).replace(microsecond=0)
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity["unit"] = unit
        if ucum:
            quantity |= {"system": "http://unitsofmeasure.org", "code": unit}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": effective.isoformat(),
        "valueQuantity": quantity,
    }
    if identifier:
        resource["identifier"] = [{"system": "urn:lab:accession", "value": identifier}]
    return resource


def transaction_of(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in resources],
    }
