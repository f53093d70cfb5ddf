"""Pagination (its own module: DRF imports the default pagination class while loading its generic views)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db.models import Count, QuerySet, Window
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from pathways.domain import units
from pathways.errors import InvalidInput

if TYPE_CHECKING:
    from pathways.api.compiled import CompiledPage

MAX_PAGE_SIZE = 200
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset paging; a limit above MAX_PAGE_SIZE or a malformed value is a 400, not silently clamped.

    The page is read with one row more than it shows, which says whether another page follows. The total
    `count` then costs a COUNT statement only when the page cannot tell it: a page that ends the list gives the
    total itself (offset + its rows), so a list that fits on one page runs one statement, not two. `count=false`
    drops the total altogether ("has more" paging: `count` is null, `next` says whether more follow), for
    clients that page through long lists and need no total (docs/api.md; issue 15). On lists bounded by the
    user's own work the total comes with the page in one statement (`total_in_page`)."""

    default_limit = 50
    max_limit = MAX_PAGE_SIZE
    count_query_param = "count"
    count_query_description = (
        "false: leave out the total (`count` is null) and skip counting; `next` still says whether more follow."
    )

    @staticmethod
    def _parse(request: Request, name: str, *, minimum: int, maximum: int | None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            return units.to_int(
                raw, field_name=name, minimum=minimum, maximum=units.MAX_INTEGER if maximum is None else maximum
            )
        except InvalidInput as exc:
            raise ValidationError(exc.fields) from None

    def get_limit(self, request: Request) -> int | None:
        limit = self._parse(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        return self._parse(request, self.offset_query_param, minimum=0, maximum=None) or 0

    def wants_count(self, request: Request) -> bool:
        raw = request.query_params.get(self.count_query_param)
        if raw is None:
            return True
        text = raw.strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValidationError({self.count_query_param: ["must be true or false"]})

    @staticmethod
    def total_in_page(queryset: QuerySet[Any], view: Any) -> bool:
        """Whether the page's own statement should carry the total (`COUNT(*) OVER ()`), sparing the COUNT.

        Only where the view says its list is bounded by the user's own work (`total_with_page`: the queue, a
        specialist's care-team tasks): the window makes PostgreSQL hold every matching row before the page is
        cut, which costs less than a second statement for hundreds of rows, and far more for a site's or the
        network's whole table, which keep their COUNT (issue 15; docs/benchmarks.md)."""
        return (
            bool(getattr(view, "total_with_page", False))
            and not queryset.query.distinct
            and not queryset.query.combinator
        )

    @staticmethod
    def with_total(queryset: QuerySet[Any]) -> QuerySet[Any]:
        """`queryset` with each row carrying the number of rows in the whole list (`page_total`)."""
        return queryset.annotate(page_total=Window(Count("*")))

    def page_request(self, request: Request) -> tuple[int, int, bool]:
        """The request's limit, offset and whether it wants the total (400 on a malformed or too large value)."""
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        return self.limit or self.default_limit, self.offset, self.wants_count(request)

    def _settle(
        self, rows: list[Any], *, want_count: bool, total: Callable[[Any], int] | None, count: Callable[[], int]
    ) -> list[Any]:
        # `rows`: the page read with one row more. The total: none; the page's own when it ends the list; the
        # first row's `total` when the page carries it; else `count()`.
        limit, offset = self.limit or self.default_limit, self.offset or 0
        self.has_more = len(rows) > limit
        rows = rows[:limit]
        found: int | None
        if not want_count:
            found = None
        elif not self.has_more and (rows or offset == 0):
            found = offset + len(rows)  # this page ends the list
        elif total is not None and rows:
            found = total(rows[0])
        else:
            found = count()
        self.count = found  # type: ignore[assignment]
        self.display_page_controls = found is not None and found > limit and self.template is not None
        return rows

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any] | None:
        limit, offset, want_count = self.page_request(request)
        in_page = want_count and self.total_in_page(queryset, view)
        page = self.with_total(queryset) if in_page else queryset
        return self._settle(
            list(page[offset : offset + limit + 1]),
            want_count=want_count,
            total=(lambda row: row.page_total) if in_page else None,
            count=lambda: self.get_count(queryset),
        )

    def paginate_compiled(self, page: CompiledPage, request: Request) -> list[Any]:
        """The same paging from a compiled page (pathways.api.compiled): its rows as objects for the serializer."""
        self.page_request(request)
        now = timezone.now()
        rows = self._settle(
            page.rows(now),
            want_count=page.want_count,
            total=page.total if page.total_at is not None else None,
            count=lambda: page.counted(now),
        )
        return page.objects(rows)

    def get_next_link(self) -> str | None:
        if not self.has_more:
            return None
        if self.count is not None or self.request is None or self.limit is None or self.offset is None:
            return super().get_next_link()
        url = replace_query_param(self.request.build_absolute_uri(), self.limit_query_param, self.limit)
        return replace_query_param(url, self.offset_query_param, self.offset + self.limit)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"] = {
            "type": "integer",
            "nullable": True,
            "example": 123,
            "description": "Total number of results; null with `count=false`.",
        }
        return response

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        parameters.append(
            {
                "name": self.count_query_param,
                "required": False,
                "in": "query",
                "description": self.count_query_description,
                "schema": {"type": "boolean"},
            }
        )
        return parameters
