"""List pages count only when the page cannot tell the total, and `count=false` pages without a total (issue 15)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import World, client_for

pytestmark = pytest.mark.django_db


def _get(world: World, url: str, user: str = "coordinator") -> tuple[dict, list[str]]:
    client = client_for(world.users[user])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    counts = [q["sql"] for q in queries.captured_queries if 'AS "__count"' in q["sql"]]
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


@pytest.mark.parametrize("url", ["/api/v1/queue/", "/api/v1/tasks/", "/api/v1/tasks/?status=requested"])
def test_lists_bounded_by_the_users_own_work_carry_their_total_in_the_page_statement(world: World, url: str) -> None:
    # The queue and a specialist's care-team tasks: the page's statement carries COUNT(*) OVER (), no COUNT.
    join = "&" if "?" in url else "?"
    full, _ = _get(world, f"{url}{join}limit=200", user="wound_nurse")
    total = full["count"]
    assert total >= 2, "the world gives the wound nurse at least two tasks here"
    client = client_for(world.users["wound_nurse"])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{url}{join}limit=1")
    body = response.json()
    assert (body["count"], len(body["results"]), body["results"][0]["id"]) == (total, 1, full["results"][0]["id"])
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert not any('AS "__count"' in sql for sql in selects)
    assert sum("COUNT(*) OVER ()" in sql for sql in selects) == 1, selects
    assert "page_total" not in body["results"][0]
    # Past the end of the list the page has no rows to carry the total: one COUNT, the right total.
    beyond, counts = _get(world, f"{url}{join}limit=1&offset={total + 3}", user="wound_nurse")
    assert (beyond["count"], beyond["results"], len(counts)) == (total, [], 1)


def test_a_coordinators_site_wide_list_keeps_its_count_statement(world: World) -> None:
    # A site's tasks can be a whole table: a window would hold every row before the page is cut.
    first, counts = _get(world, "/api/v1/tasks/?limit=1")
    assert first["next"] is not None and len(counts) == 1
