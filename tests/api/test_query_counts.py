"""List endpoints run a fixed number of queries whatever the page size (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pathways.services.enrollment import enrollment_apply
from tests.api.conftest import World, client_for, notify
from tests.factories import PatientFactory

AUDIT_QUERIES = 3

LIST_ENDPOINTS = [
    "/api/v1/sites/",
    "/api/v1/patients/",
    "/api/v1/pathways/",
    "/api/v1/enrollments/",
    "/api/v1/tasks/",
    "/api/v1/tasks/?pool=true&available=true",
    "/api/v1/queue/",
    "/api/v1/notifications/",
]


@pytest.fixture
def busy_world(world: World) -> World:
    """Enough rows that a page of 50 differs from a page of 5 for every list."""
    coordinator = world.users["coordinator"]
    for _ in range(8):
        patient = PatientFactory(site=world.site)
        enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    for user in world.users.values():
        for n, task in enumerate(world.enrollment.tasks.all()[:8]):
            notify(user, task, key=f"busy-{n}")
    return world


def _count(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(ctx.captured_queries), len(response.json()["results"])


@pytest.mark.postgres
@pytest.mark.parametrize("url", LIST_ENDPOINTS)
@pytest.mark.parametrize("role", ["coordinator", "wound_nurse", "admin"])
def test_list_query_count_does_not_grow_with_page_size(
    busy_world: World, url: str, role: str, django_assert_max_num_queries
) -> None:
    client = client_for(busy_world.users[role])
    joiner = "&" if "?" in url else "?"
    small, small_rows = _count(client, f"{url}{joiner}limit=5")
    with django_assert_max_num_queries(small):
        response = client.get(f"{url}{joiner}limit=50")
    assert response.status_code == 200
    large_rows = len(response.json()["results"])
    # The guard means something only when the big page really holds more rows than the small one.
    if url not in ("/api/v1/sites/", "/api/v1/pathways/"):
        assert large_rows > small_rows or large_rows == response.json()["count"], (small_rows, large_rows)
    # + the audit event's INSERT and, inside the test's transaction, the request transaction's SAVEPOINT/RELEASE
    # (pathways.middleware.AuditMiddleware); in production that is BEGIN/COMMIT, which are not counted.
    assert small <= 6 + AUDIT_QUERIES, f"{url} takes {small} queries"


@pytest.mark.postgres
def test_the_task_list_really_fills_a_large_page(busy_world: World) -> None:
    client = client_for(busy_world.users["coordinator"])
    assert len(client.get("/api/v1/tasks/?limit=50").json()["results"]) == 50
