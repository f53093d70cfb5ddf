"""The cross-site (and cross-team) access matrix for /fhir/R4/: reads of another site's or another team's
resource are a 404, and searches never include them. Table-driven: role x route x target."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import World
from tests.fhir.conftest import Fhir
from tests.photos.conftest import photo_on

pytestmark = pytest.mark.django_db

C, A, D, W = "coordinator", "auditor", "admin", "wound_nurse"
STAFF = (C, A, D, W)


def targets(world: World, target: str) -> dict[str, Any]:
    if target == "own":
        return {"patient": world.patient.pk, "enrollment": world.enrollment.pk, "task": world.task.pk}
    if target == "other_site":
        return {
            "patient": world.other_site_patient.pk,
            "enrollment": world.other_site_enrollment.pk,
            "task": world.other_site_task.pk,
        }
    return {
        "patient": world.other_team_patient.pk,
        "enrollment": world.other_team_enrollment.pk,
        "task": world.other_team_task.pk,
    }


# (read path, who may read their own: status, who gets 404 for another site's, for another team's)
READS = [
    ("Patient/{patient}", dict.fromkeys(STAFF, 200), (C, A, W), (W,)),
    ("CarePlan/{enrollment}", dict.fromkeys(STAFF, 200), (C, A, W), (W,)),
    ("CareTeam/{enrollment}", dict.fromkeys(STAFF, 200), (C, A, W), (W,)),
    ("Task/{task}", dict.fromkeys(STAFF, 200), (C, A, W), (W,)),
    ("Media/{photo}", dict.fromkeys(STAFF, 200), (C, A, W), (W,)),
    ("PlanDefinition/{pathway}", dict.fromkeys(STAFF, 200), (), ()),
    ("SearchParameter/task-due", dict.fromkeys(STAFF, 200), (), ()),
    ("AuditEvent", {C: 403, A: 200, D: 200, W: 403}, (), ()),
]
# Searches naming a patient: in scope they answer with entries; out of scope, with none.
SEARCHES = ["Task", "CarePlan", "CareTeam", "Observation", "Flag", "Media"]


def _cases() -> list[Any]:
    cases = []
    for path, own, other_site, other_team in READS:
        for role, status in own.items():
            cases.append(pytest.param(path, role, "own", status, id=f"{path}-{role}-own"))
        cases.append(pytest.param(path, None, "own", 401, id=f"{path}-anonymous"))
        for role in other_site:
            cases.append(pytest.param(path, role, "other_site", 404, id=f"{path}-{role}-other_site"))
        for role in other_team:
            cases.append(pytest.param(path, role, "other_team", 404, id=f"{path}-{role}-other_team"))
    return cases


@pytest.mark.parametrize(("path", "role", "target", "expected"), _cases())
def test_fhir_read_matrix(world: World, path: str, role: str | None, target: str, expected: int) -> None:
    fhir = Fhir(world.users[role] if role else None)
    ids = targets(world, target)
    if "{photo}" in path:
        enrollment = {"own": world.enrollment, "other_site": world.other_site_enrollment}.get(
            target, world.other_team_enrollment
        )
        ids["photo"] = photo_on(enrollment, world.users[D]).pk
    response = fhir.get(path.format(pathway=world.pathway.pk, **ids))
    assert response.status_code == expected, response.json()
    if expected >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("role", [C, A, W])
@pytest.mark.parametrize("kind", SEARCHES)
def test_fhir_searches_never_include_another_sites_or_teams_resources(world: World, role: str, kind: str) -> None:
    for enrollment in (world.enrollment, world.other_site_enrollment, world.other_team_enrollment):
        photo_on(enrollment, world.users[D])
    fhir = Fhir(world.users[role])
    hidden = ["other_site"] + (["other_team"] if role == W else [])
    for target in hidden:
        body = fhir.get(kind, patient=targets(world, target)["patient"], _count=200).json()
        assert "entry" not in body, (kind, target)
    everything = fhir.get(kind, _count=200).json()
    patients = {
        ref
        for entry in everything.get("entry", [])
        for ref in [
            entry["resource"].get("subject", {}).get("reference"),
            entry["resource"].get("for", {}).get("reference"),
        ]
        if ref
    }
    for target in hidden:
        assert f"Patient/{targets(world, target)['patient']}" not in patients, (kind, target)
    if kind in ("Task", "CarePlan", "CareTeam"):
        assert f"Patient/{world.patient.pk}" in patients
