"""List pages count only when the page cannot tell the total, and `count=false` pages without a total (issue 15)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import World, client_for

pytestmark = pytest.mark.django_db


def _get(world: World, url: str) -> tuple[dict, list[str]]:
    client = client_for(world.users["coordinator"])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    return response.json(), counts


def test_a_list_that_fits_on_its_page_is_counted_from_its_rows(world: World) -> None:
    body, counts = _get(world, "/api/v1/tasks/?limit=200")
    assert body["count"] == len(body["results"]) > 3
    assert body["next"] is None
    assert counts == []


def test_a_longer_list_is_counted_once_and_its_last_page_from_its_rows(world: World) -> None:
    full, _ = _get(world, "/api/v1/tasks/?limit=200")
    total = full["count"]
    first, counts = _get(world, "/api/v1/tasks/?limit=3")
    assert (first["count"], len(first["results"]), len(counts)) == (total, 3, 1)
    assert "offset=3" in first["next"]
    last_offset = total - 2
    last, counts = _get(world, f"/api/v1/tasks/?limit=3&offset={last_offset}")
    assert (last["count"], last["next"], counts) == (total, None, [])
    assert [r["id"] for r in last["results"]] == [r["id"] for r in full["results"]][last_offset:]
    beyond, counts = _get(world, f"/api/v1/tasks/?limit=3&offset={total + 5}")
    assert (beyond["count"], beyond["results"], len(counts)) == (total, [], 1)


def test_count_false_pages_by_has_more_without_a_total(world: World) -> None:
    full, _ = _get(world, "/api/v1/tasks/?limit=200")
    ids = [r["id"] for r in full["results"]]
    seen: list[int] = []
    url: str | None = "/api/v1/tasks/?limit=4&count=false"
    while url:
        body, counts = _get(world, url)
        assert body["count"] is None and counts == []
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
        if url:
            assert "count=false" in url
    assert seen == ids


@pytest.mark.parametrize("value", ["maybe", "", "2", "yes"])
def test_a_malformed_count_parameter_is_a_400(world: World, value: str) -> None:
    response = client_for(world.users["coordinator"]).get(f"/api/v1/tasks/?count={value}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"count": ["must be true or false"]}
