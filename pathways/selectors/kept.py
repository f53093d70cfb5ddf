"""Reads whose SQL is compiled once per process and run with fresh parameters (issue 15).

Compiling a queryset to SQL costs about as much Python as running it for the small, hot reads of every request
(the API token lookup; the list pages, pathways.api.compiled). These helpers keep what the ORM would compute each
time, the statement and how its columns convert and become model instances, and reuse it. They only ever keep a
statement whose shape does not depend on the data: the caller decides which parameters vary.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]
from django.db.models.sql.compiler import SQLCompiler

Converters = tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


def converters_of(compiler: SQLCompiler) -> Converters:
    """The compiled statement's column converters (what `compiler.results_iter` applies), by column index."""
    expressions = [expression for expression, _, _ in compiler.select[: compiler.col_count]]
    return tuple((i, tuple(functions), e) for i, (functions, e) in compiler.get_converters(expressions).items())


def convert(rows: Sequence[tuple[Any, ...]], converters: Converters) -> list[tuple[Any, ...]]:
    """`rows` as the ORM hands them on: each column through its converters (JSON decoded, and so on)."""
    if not converters:
        return list(rows)
    out = []
    for row in rows:
        values = list(row)
        for i, functions, expression in converters:
            value = values[i]
            for function in functions:
                value = function(value, expression, connection)
            values[i] = value
        out.append(tuple(values))
    return out


@dataclass(frozen=True)
class KeptModelRead:
    """A queryset's statement, kept, that returns model instances (with their select_related rows) as the
    queryset would. Build it with `keep(queryset, marker)`, where `marker` is the value each call replaces
    (`first(value)`), wherever the statement holds it (a lookup by id pushed into subqueries holds it several
    times)."""

    sql: str
    params: tuple[Any, ...]
    at: tuple[int, ...]
    converters: Converters
    model: type[Model]
    init_list: tuple[str, ...]
    start: int
    end: int
    populators: tuple[Any, ...]

    def first(self, value: Any) -> Any:
        """The first instance the statement returns with `value` in place of the marker, or None."""
        params = list(self.params)
        for i in self.at:
            params[i] = value
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        (row,) = convert([row], self.converters)
        obj = self.model.from_db(connection.alias, list(self.init_list), row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, obj)
        return obj


def keep(queryset: QuerySet[Any], marker: Any) -> KeptModelRead:
    """`queryset` compiled once, with `marker` (a value it filters on, that no other parameter can equal) to be
    replaced on each call. Raises ValueError when the marker is not among the parameters."""
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    positions = tuple(i for i, p in enumerate(params) if type(p) is type(marker) and p == marker)
    if not positions:
        raise ValueError("the marker is not among the parameters")
    info = compiler.klass_info
    fields = info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    return KeptModelRead(
        sql=sql,
        params=tuple(params),
        at=positions,
        converters=converters_of(compiler),
        model=info["model"],
        init_list=tuple(column[0].target.attname for column in compiler.select[start:end]),
        start=start,
        end=end,
        populators=tuple(get_related_populators(info, compiler.select, connection.alias)),
    )


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A bounded map, least recently used out first, safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self, **_: Any) -> None:
        with self.lock:
            self.items.clear()

    def __len__(self) -> int:
        return len(self.items)


def user_key(user: Any) -> str:
    """Every column of the user's row but the password hash (no scope reads it, and a cache key should not
    carry it), as one string (array columns such as `roles` are not hashable)."""
    return repr(tuple(getattr(user, f.attname) for f in user._meta.concrete_fields if f.attname != "password"))
