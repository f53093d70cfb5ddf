"""What a query reads, from PostgreSQL's own account of running it: EXPLAIN (ANALYZE, FORMAT JSON).

`rows_read` is the evidence that a page's cost follows the user's own work (docs/benchmarks.md, issue 15): the
rows every scan node produced or discarded, over all its loops. Timing on a shared machine is noisy; this is not.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.db.models import QuerySet


def explain(qs: QuerySet[Any]) -> dict[str, Any]:
    """The executed plan of `qs` (its top node, PostgreSQL's JSON form). Runs the query once."""
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        document = cursor.fetchone()[0]
    plans = json.loads(document) if isinstance(document, str) else document
    return dict(plans[0]["Plan"])


def rows_read(plan: dict[str, Any], table: str | None = None) -> int:
    """Rows that the scan nodes of an executed plan returned or filtered out, times their loops: what the query
    read from tables and indexes (joins and sorts above them only pass rows on). With `table`, only the scans of
    that table (a bitmap index scan's rows are counted by the heap scan above it)."""
    total = 0
    node = plan.get("Node Type", "")
    if "Scan" in node and (table is None or (plan.get("Relation Name") == table and node != "Bitmap Index Scan")):
        per_loop = (
            plan.get("Actual Rows", 0)
            + plan.get("Rows Removed by Filter", 0)
            + plan.get("Rows Removed by Index Recheck", 0)
        )
        total += int(per_loop * plan.get("Actual Loops", 1))
    for child in plan.get("Plans", ()):
        total += rows_read(child, table)
    return total
