"""Reads whose SQL is compiled once per process and run with fresh parameters (issue 15).

Compiling a queryset to SQL costs about as much Python as running it for the small, hot reads of every request
(the API token lookup; the list pages, pathways.api.compiled). These helpers keep what the ORM would compute each
time, the statement and how its columns convert and become model instances, and reuse it. They only ever keep a
statement whose shape does not depend on the data: the caller decides which parameters vary.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.core.signals import setting_changed
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

Converters = tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


# --- what may be kept: parameters that are constants, or "now" ----------------------------------------------


def is_constant(value: Any) -> bool:
    """A parameter that cannot hide a clock reading: plain values, and JSON documents (psycopg's Jsonb) of them."""
    if value is None or isinstance(value, (str, int, float, Decimal, uuid.UUID)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_constant(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_constant(v) for k, v in value.items())
    wrapped = getattr(value, "obj", _NOTHING)  # psycopg.types.json.Jsonb
    return wrapped is not _NOTHING and is_constant(wrapped)


_NOTHING = object()


def is_timed(value: Any) -> bool:
    """A date, time or duration, or a collection holding one (a value that could come from a clock)."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(is_timed(item) for item in value)
    return isinstance(value, (dt.date, dt.time, dt.timedelta))  # a datetime is a date


def now_positions(params: Sequence[Any], started: dt.datetime, finished: dt.datetime) -> tuple[tuple[int, ...], bool]:
    """The positions of "now" among `params` (datetimes made while the query was built, between `started` and
    `finished`), and whether every other parameter is a constant (no other date or time, which could be derived
    from the clock). Only PostgreSQL's parameters are checked this way (other databases adapt datetimes to text
    first), so elsewhere nothing is constant."""
    now_at = []
    constant = connection.vendor == "postgresql"
    for i, value in enumerate(params):
        if isinstance(value, dt.datetime) and started <= value <= finished:
            now_at.append(i)
        elif not is_constant(value):
            constant = False
    return tuple(now_at), constant


@contextmanager
def statements_counted() -> Iterator[list[str]]:
    """The statements run inside the block (run as usual), listed: a build that ran one may depend on the data."""
    ran: list[str] = []

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        ran.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield ran


@dataclass(frozen=True)
class KeptStatement:
    """A compiled statement whose parameters are constants but for "now", at `now_at`, bound afresh each run."""

    sql: str
    params: tuple[Any, ...]
    now_at: tuple[int, ...]

    def bind(self, now: dt.datetime) -> list[Any]:
        params = list(self.params)
        for i in self.now_at:
            params[i] = now
        return params

    def rows(self, now: dt.datetime) -> list[tuple[Any, ...]]:
        """The statement's rows (raw, no converters) with `now` bound."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.bind(now))
            return cursor.fetchall()

    def counted(self, now: dt.datetime) -> int:
        """A COUNT statement's answer with `now` bound."""
        return int(self.rows(now)[0][0])


class _Capture(Exception):
    """Raised by the COUNT's execute wrapper once it has the statement: compiled, never sent."""


def compile_count(queryset: QuerySet[Any]) -> tuple[str, tuple[Any, ...]] | None:
    """The statement `queryset.count()` would run, captured before it reaches the database; None when Django
    answers without one (a filter it knows matches nothing: the count is 0)."""
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def capture(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, tuple(params or ())))
        raise _Capture

    log = connection.queries_log
    last = log[-1] if log else None
    try:
        with connection.execute_wrapper(capture):
            queryset.count()
    except _Capture:
        pass
    if connection.queries_logged and log and log[-1] is not last:
        log.pop()  # the debug cursor logged the statement it never ran
    return captured[0] if captured else None


Compiled = tuple[str, tuple[Any, ...]] | None  # a statement and its parameters; None: Django needs none


def compiled(queryset: QuerySet[Any]) -> tuple[str, tuple[Any, ...]]:
    """The statement iterating `queryset` runs. A filter Django knows matches nothing compiles to "0 = 1"
    (elide_empty=False) rather than raising."""
    sql, params = queryset.query.get_compiler(connection=connection, elide_empty=False).as_sql()
    return sql, tuple(params)


KeptReads = tuple[KeptStatement | None, ...]


def _kept(
    cache: LRUCache[Any, KeptReads],
    key: Hashable,
    build: Callable[[dt.datetime], QuerySet[Any]],
    compile_all: Callable[[QuerySet[Any]], tuple[Compiled, ...]],
    now: dt.datetime,
) -> KeptReads:
    """The statements `compile_all` makes of the queryset `build(now)` makes, compiled once per `key` and kept
    under the pages' rules (pathways.api.compiled): only if building ran no statement and every parameter is a
    constant or `now`; otherwise used for this call only."""
    kept = cache.get(key)
    if kept is None:
        with statements_counted() as ran:
            queryset = build(now)
        statements = compile_all(queryset)  # after the count: compile_count captures a statement it never runs
        finished = timezone.now()
        reads: list[KeptStatement | None] = []
        keepable = not ran
        for statement in statements:
            if statement is None:
                reads.append(None)
                continue
            now_at, constant = now_positions(statement[1], now, finished)
            keepable = keepable and constant
            reads.append(KeptStatement(statement[0], statement[1], now_at))
        kept = tuple(reads)
        if keepable:
            cache.put(key, kept)
    return kept


def kept_values(
    cache: LRUCache[Any, KeptReads],
    key: Hashable,
    build: Callable[[dt.datetime], QuerySet[Any]],
    *,
    limit: int,
    now: dt.datetime,
) -> tuple[list[tuple[Any, ...]], Callable[[], int]]:
    """The first `limit` rows of the values queryset `build(now)` makes, and a function that counts all of its
    rows, through statements compiled once per `key`. `now` is the current time (timezone.now(), read by the
    caller); `key` must hold everything `build` reads besides the database and the clock. Rows come as the
    database gives them (no converters: read plain columns, such as ids)."""
    head, count = _kept(cache, key, build, lambda qs: (compiled(qs[:limit]), compile_count(qs)), now)
    assert head is not None

    def counted() -> int:
        return count.counted(now) if count else 0

    return head.rows(now), counted


def kept_count(
    cache: LRUCache[Any, KeptReads], key: Hashable, build: Callable[[dt.datetime], QuerySet[Any]], *, now: dt.datetime
) -> int:
    """`build(now).count()`, through a statement compiled once per `key` (as kept_values)."""
    (count,) = _kept(cache, key, build, lambda qs: (compile_count(qs),), now)
    return count.counted(now) if count else 0


def process_cache(size: int, name: str) -> LRUCache[Any, Any]:
    """An LRUCache of `size` entries for this process, emptied whenever a setting changes (as tests'
    override_settings do); `name` identifies its signal receiver."""
    cache: LRUCache[Any, Any] = LRUCache(size)
    setting_changed.connect(cache.clear, dispatch_uid=f"pathways.kept.{name}")
    return cache


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


# Columns no scope reads and a key should not carry: the password hash, and the last sign-in (each sign-in would
# otherwise start the user's kept pages afresh).
_NOT_KEYED = frozenset({"password", "last_login"})


def user_key(user: Any) -> str:
    """Every column of the user's row but the password hash and the last sign-in (no scope reads them), as one
    string (array columns such as `roles` are not hashable)."""
    return repr(tuple(getattr(user, f.attname) for f in user._meta.concrete_fields if f.attname not in _NOT_KEYED))
