"""Compiled list pages: the task list and the queue build and compile their scoped, filtered query once per user
and request, then only bind "now" and run it (issue 15; docs/benchmarks.md, "Compiled pages").

Building a page's queryset (the scope selectors, the filterset) and compiling it to SQL took about a quarter of
each request, and so did turning its rows into model instances. A page is compiled once into a `CompiledPage`:
its SQL and parameters, where "now" sits among them, the COUNT the paginator would run, and how a row's columns
feed the serializer. Later requests with the same key run the same SQL with a fresh "now" and hand the
serializer light row objects with the attributes it reads (`TaskSerializer` reads attributes only).

Why a cached page can never show what the ORM would not (tests/api/test_compiled_pages.py):
- **The key holds everything the SQL is built from:** the view and its action, every column of the user's row
  (roles, flags, `is_active`, …) and every query parameter. Sites and care-team memberships are subqueries in
  the SQL, read when it runs, so a site or care-team change shows on the very next request.
- **Only a pure build is kept.** If building the queryset ran any statement (a filter that looks a row up, a
  selector that reads a table in Python), its SQL could depend on the database's state, and it is used for this
  request only.
- **Time is rebound, never kept.** A `datetime` parameter made while the query was built is "now" and is bound
  afresh on every request. A page with any other parameter that is not a plain constant (a date, a time, a
  datetime from before the build, such as the start of today), or whose filters took a date or a time from the
  client (`view.filter_values`, told by pathways.api.filter_backend), is not kept. Only PostgreSQL's parameters
  are checked this way (other databases adapt datetimes to text first), so elsewhere nothing is kept.
- A changed setting (`setting_changed`, as tests' `override_settings` sends) empties the cache; a deploy starts
  new processes with empty caches. The cache holds at most `MAX_PAGES` pages per process, least recently used
  first out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from pathways.selectors.kept import (
    Converters,
    KeptModelRead,
    KeptStatement,
    LRUCache,
    compile_count,
    convert,
    converters_of,
    is_constant,
    is_timed,
    keep,
    now_positions,
    process_cache,
    statements_counted,
    user_key,
)

MAX_PAGES = 2000

# (model attribute, column index) for one model's columns, and its related rows as (attribute, layout).
_Fields = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class _Layout:
    fields: _Fields
    pk_at: int
    related: tuple[tuple[str, _Layout], ...]
    annotations: _Fields = ()


@dataclass(frozen=True)
class CompiledPage:
    """One list page as SQL: the page's statement (LIMIT one row more than the page), the paginator's COUNT when
    it needs one, and how to turn a row into the object the serializer reads."""

    page: KeptStatement
    want_count: bool
    count: KeptStatement | None  # None with want_count: Django knew the list empty without asking (a count of 0)
    total_at: int | None  # the column holding `COUNT(*) OVER ()`, when the page carries its total
    layout: _Layout
    converters: Converters
    cacheable: bool

    def rows(self, now: dt.datetime) -> list[tuple[Any, ...]]:
        return convert(self.page.rows(now), self.converters)

    def total(self, row: tuple[Any, ...]) -> int:
        assert self.total_at is not None
        return int(row[self.total_at])

    def counted(self, now: dt.datetime) -> int:
        return self.count.counted(now) if self.count else 0

    def objects(self, rows: list[tuple[Any, ...]]) -> list[SimpleNamespace]:
        """Rows as objects with the model's attribute names (`id`, `pk`, `enrollment_id`, …), related rows as
        nested objects (`task.enrollment.patient_id`; None for a missing optional row), and annotations."""
        return [_object(self.layout, row) for row in rows]


def _object(layout: _Layout, row: tuple[Any, ...]) -> SimpleNamespace:
    obj = SimpleNamespace(**{name: row[i] for name, i in layout.fields})
    obj.pk = row[layout.pk_at]
    for name, related in layout.related:
        setattr(obj, name, None if row[related.pk_at] is None else _object(related, row))
    for name, i in layout.annotations:
        setattr(obj, name, row[i])
    return obj


def _layout(klass_info: dict[str, Any], select: list[Any], annotations: dict[str, int]) -> _Layout:
    model = klass_info["model"]
    fields = tuple((select[i][0].target.attname, i) for i in klass_info["select_fields"])
    pk_attname = model._meta.pk.attname
    pk_at = next(i for name, i in fields if name == pk_attname)
    related = tuple(
        (info["field"].name, _layout(info, select, {})) for info in klass_info.get("related_klass_infos", ())
    )
    return _Layout(fields=fields, pk_at=pk_at, related=related, annotations=tuple(annotations.items()))


def compile_page(
    queryset: QuerySet[Any],
    *,
    started: dt.datetime,
    limit: int,
    offset: int,
    in_page: bool,
    want_count: bool,
    with_total: Callable[[QuerySet[Any]], QuerySet[Any]],
    pure: bool,
) -> CompiledPage:
    """`queryset` (built from `started` on) compiled as the paginator reads it: `limit + 1` rows from `offset`,
    with the total in the page (`with_total`) when `in_page`, and the COUNT when `want_count`.
    `pure`: building the queryset ran no statement (the page may be kept)."""
    page_qs = (with_total(queryset) if in_page else queryset)[offset : offset + limit + 1]
    # elide_empty=False: a filter Django knows matches nothing compiles to "0 = 1" instead of raising.
    compiler = page_qs.query.get_compiler(connection=connection, elide_empty=False)
    sql, params = compiler.as_sql()
    # Also beside a total in the page: a page past the end of the list has no row to carry it.
    count = compile_count(queryset) if want_count else None
    finished = timezone.now()
    page_now, page_timeless = now_positions(tuple(params), started, finished)
    count_now, count_timeless = now_positions(count[1], started, finished) if count else ((), True)
    select = compiler.select
    total_at = next((i for i, (_, _, alias) in enumerate(select) if alias == "page_total"), None)
    return CompiledPage(
        page=KeptStatement(sql, tuple(params), page_now),
        want_count=want_count,
        count=KeptStatement(count[0], count[1], count_now) if count else None,
        total_at=total_at if in_page else None,
        layout=_layout(compiler.klass_info, select, compiler.annotation_col_map),
        converters=converters_of(compiler),
        cacheable=pure and page_timeless and count_timeless,
    )


pages: LRUCache[tuple[Any, ...], CompiledPage] = process_cache(MAX_PAGES, "api pages")


def request_key(view: Any, request: Any) -> tuple[Any, ...]:
    """What a kept page or lookup is built from: the view and its action, the user's row, every query parameter."""
    query = tuple(sorted((name, tuple(values)) for name, values in request.query_params.lists()))
    return (type(view).__qualname__, view.action, user_key(request.user), query)


class CompiledListMixin:
    """`list` for a viewset whose page is compiled once per key (this module): the same scope, filterset,
    paginator and serializer as DRF's ListModelMixin, with the built queryset kept as SQL. The serializer must
    read attributes only (TaskSerializer's getters), as it is handed row objects, not model instances."""

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        view: Any = self
        paginator = view.paginator
        key = request_key(view, request)
        page = pages.get(key)
        if page is None:
            started = timezone.now()
            with statements_counted() as ran:
                queryset = view.filter_queryset(view.get_queryset())
            # After the filters, as DRF's list checks them: a request with a bad filter and a bad limit names the
            # filter (a kept page's filters were valid).
            limit, offset, want_count = paginator.page_request(request)
            # A date or time the client gave could fall inside the build and pass for "now".
            timed = any(is_timed(value) for value in getattr(view, "filter_values", {}).values())
            page = compile_page(
                queryset,
                started=started,
                limit=limit,
                offset=offset,
                in_page=want_count and paginator.total_in_page(queryset, view),
                want_count=want_count,
                with_total=paginator.with_total,
                pure=not ran and not timed,
            )
            if page.cacheable:
                pages.put(key, page)
        objects = paginator.paginate_compiled(page, request)
        return view.get_paginated_response(view.get_serializer(objects, many=True).data)


# Stands for the id while a lookup is compiled: a negative bigint, which no id and no other parameter can be.
_ID_MARKER = -(2**62) - 4711
lookups: LRUCache[tuple[Any, ...], KeptModelRead] = process_cache(MAX_PAGES, "api lookups")


class KeptLookupMixin:
    """`find_object` for the actions named in `kept_lookups`: the scoped (and, for changes, locked) lookup by
    id compiled once per user, with the same rules as the pages (the key is the view, the action, the user's
    row and the query parameters; a build that ran a statement or holds a date or time is used once). The
    instances are those the queryset gives, related rows included, so the services can take them."""

    kept_lookups: frozenset[str] = frozenset()

    def find_object(self) -> Any:
        view: Any = self
        if view.action not in self.kept_lookups:
            return super().find_object()  # type: ignore[misc]
        request = view.request
        key = request_key(view, request)
        read = lookups.get(key)
        if read is None:
            with statements_counted() as ran:
                queryset = view.filter_queryset(view.get_queryset()).filter(pk=_ID_MARKER)
            read = keep(queryset, _ID_MARKER)
            constant = connection.vendor == "postgresql" and all(is_constant(p) for p in read.params)
            if not ran and constant:
                lookups.put(key, read)
        obj = read.first(int(view.kwargs[view.lookup_url_kwarg or view.lookup_field]))
        if obj is None:
            raise Http404
        view.check_object_permissions(request, obj)
        return obj
