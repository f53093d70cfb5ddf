"""The floor: bare Django views that run the same SQL as the /api/v1/queue/ and /api/v1/tasks/ list pages and
return the same JSON, without DRF, the audit middleware, filtersets, model instances or serializers.

Per request a floor view does what the API page does in the database, statement for statement: BEGIN; the token
lookup; the page's SELECT (one row more than the page shows); the page's COUNT when the page does not end the
list (pathways.api.pagination); the audit INSERT; COMMIT. The COUNT and SELECT are the API's own
statements: the first request for a (user, page, query) compiles them through the very selectors and
filterset the API uses, and keeps the SQL text; later requests only bind fresh parameters ("now") and execute
it. The difference between a page and its floor (docs/benchmarks.md) is therefore the framework's cost:
DRF's request/response cycle, authentication classes, the paginator, the serializer, and the audit middleware's
bookkeeping. The API's task list and queue compile once per user and request as well (pathways.api.compiled),
with a key that also holds the user's roles and flags.

Mounted only by the benchmark's URLconf (bench/urls.py, under carepath.bench_settings), at /bench-floor/, outside
/api/v1/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework.utils.urls import remove_query_param, replace_query_param

from pathways.api.filters import TaskFilter
from pathways.api.pagination import MAX_PAGE_SIZE, BoundedLimitOffsetPagination
from pathways.api.serializers import TaskSerializer
from pathways.choices import OPEN_TASK_STATUSES
from pathways.models import Enrollment, PathwayTemplate, Task, TaskTemplate, User
from pathways.selectors.access import scope_tasks_is_own_work
from pathways.selectors.tasks import task_list, task_queue_for_user
from pathways.services.audit import MAX_ENTITY_IDS

# The TaskSerializer's fields, in its order (tests/bench compares the floor's JSON with the API's).
TASK_FIELDS = list(TaskSerializer.Meta.fields)
_OPEN = frozenset(str(s) for s in OPEN_TASK_STATUSES)
_PRECAUTIONS = "_precautions"  # the pathway version's precautions column (not a field itself)
# The API token lookup as pathways.api.authentication does it: by the key's SHA-256, live tokens only.
_TOKEN_SQL = (
    'SELECT u."id", u."username", u."is_active" FROM "pathways_apitoken" t '  # noqa: S105 - SQL, not a secret
    'JOIN "pathways_user" u ON t."user_id" = u."id" '
    'WHERE t."key_hash" = %s AND t."revoked_at" IS NULL AND t."expires_at" > %s'
)
_AUDIT_SQL = (
    'INSERT INTO "pathways_auditevent" ("recorded_at", "actor_id", "actor_username", "action", "subtype", '
    '"entity_type", "entity_id", "entity_ids", "patient_id", "outcome", "outcome_desc", "http_status", "method", '
    '"path", "query", "source_address", "request_id") '
    "VALUES (%s, %s, %s, 'R', %s, 'task', '', %s::jsonb, NULL, '0', '', 200, 'GET', %s, %s, %s, %s)"
)
_CACHE_LIMIT = 1000


@dataclass(frozen=True)
class _Compiled:
    """One page's SQL as the API runs it, with the positions of its "now" parameters."""

    count_sql: str
    count_params: tuple[Any, ...]
    count_now: tuple[int, ...]
    page_sql: str
    page_params: tuple[Any, ...]
    page_now: tuple[int, ...]
    # For each selected column: the serializer field it feeds ("" for columns the JSON does not use).
    columns: tuple[str, ...]
    # The column holding the list's total, when the page carries it (pathways.api.pagination.total_in_page).
    total_at: int | None


_compiled: dict[tuple[Any, ...], _Compiled] = {}


def _now_positions(params: tuple[Any, ...], started: dt.datetime, finished: dt.datetime) -> tuple[int, ...]:
    # The selectors and filters call timezone.now() while the query is built: those parameters are "now".
    return tuple(i for i, p in enumerate(params) if isinstance(p, dt.datetime) and started <= p <= finished)


def _column_field(expression: Any, alias: str | None) -> str:
    target = getattr(expression, "target", None)
    if target is None:
        return ""
    model = target.model
    if model is Task:
        # Foreign keys are serialized as their ids under the field's name (enrollment_id -> "enrollment").
        return target.name if target.name in TASK_FIELDS else ""
    if model is Enrollment and target.attname == "patient_id":
        return "patient"
    if model is TaskTemplate and target.attname == "code":
        return "template"
    if model is PathwayTemplate and target.attname == "precautions":
        return _PRECAUTIONS
    return ""


def _compile(qs: QuerySet[Task], limit: int, offset: int, *, in_page: bool) -> _Compiled:
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def capture(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    started = timezone.now()
    with connection.execute_wrapper(capture):
        qs.count()  # the paginator's statement, exactly as DRF issues it
    # One row more: does another page follow? With the total in the page as the paginator puts it there.
    page = (BoundedLimitOffsetPagination.with_total(qs) if in_page else qs)[offset : offset + limit + 1]
    compiler = page.query.get_compiler(connection=connection)
    page_sql, page_params = compiler.as_sql()
    finished = timezone.now()
    count_sql, count_params = captured[-1]
    return _Compiled(
        count_sql=count_sql,
        count_params=count_params,
        count_now=_now_positions(count_params, started, finished),
        page_sql=page_sql,
        page_params=tuple(page_params),
        page_now=_now_positions(tuple(page_params), started, finished),
        columns=tuple(_column_field(expr, alias) for expr, _, alias in compiler.select),
        total_at=next((i for i, (_, _, alias) in enumerate(compiler.select) if alias == "page_total"), None),
    )


def _bind(params: tuple[Any, ...], positions: tuple[int, ...], now: dt.datetime) -> list[Any]:
    out = list(params)
    for i in positions:
        out[i] = now
    return out


def _iso(value: Any) -> Any:
    # DRF's DateTimeField with DATETIME_FORMAT "iso-8601": UTC, "+00:00" written as "Z".
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


def _row_json(row: tuple[Any, ...], columns: tuple[str, ...], now: dt.datetime) -> dict[str, Any]:
    values = {name: value for name, value in zip(columns, row, strict=True) if name}
    blocked = values.get("blocked_by")
    if isinstance(blocked, str):
        values["blocked_by"] = json.loads(blocked)
    values["is_overdue"] = values["status"] in _OPEN and values["due_at"] < now
    # As pathways.api.serializers.task_precautions: the version's precautions that name the task's role.
    precautions = values.get(_PRECAUTIONS) or []
    if isinstance(precautions, str):
        precautions = json.loads(precautions)
    values["precautions"] = [p for p in precautions if values["role"] in p.get("roles", [])]
    return {name: _iso(values.get(name)) for name in TASK_FIELDS}


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)


def _page(request: HttpRequest, kind: str) -> HttpResponse:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Token "):
        return _error(401, "not_authenticated", "Authentication credentials were not provided.")
    try:
        limit = int(request.GET.get("limit", BoundedLimitOffsetPagination.default_limit))
        offset = int(request.GET.get("offset", 0))
    except ValueError:
        return _error(400, "invalid", "limit and offset must be integers")
    if not (1 <= limit <= MAX_PAGE_SIZE and offset >= 0):
        return _error(400, "invalid", f"limit must be 1..{MAX_PAGE_SIZE}, offset at least 0")
    filters = request.GET.copy()
    for name in ("limit", "offset"):
        filters.pop(name, None)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        digest = hashlib.sha256(header[len("Token ") :].strip().encode()).hexdigest()
        cursor.execute(_TOKEN_SQL, [digest, now])
        found = cursor.fetchone()
        if found is None or not found[2]:
            return _error(401, "authentication_failed", "Invalid token.")
        user_id, username = found[0], found[1]
        key = (kind, user_id, filters.urlencode(), limit, offset)
        cached = _compiled.get(key)
        if cached is None:
            made = _compile_page(kind, user_id, filters, limit, offset)
            if isinstance(made, HttpResponse):
                return made
            if len(_compiled) >= _CACHE_LIMIT:
                _compiled.clear()
            _compiled[key] = cached = made
        compiled = cached
        cursor.execute(compiled.page_sql, _bind(compiled.page_params, compiled.page_now, now))
        fetched = cursor.fetchall()
        has_more = len(fetched) > limit
        results = [_row_json(row, compiled.columns, now) for row in fetched[:limit]]
        if not has_more and (results or offset == 0):
            count = offset + len(results)  # the page ends the list: its rows are the total
        elif compiled.total_at is not None and fetched:
            count = fetched[0][compiled.total_at]
        else:
            cursor.execute(compiled.count_sql, _bind(compiled.count_params, compiled.count_now, now))
            count = cursor.fetchone()[0]
        query = request.META.get("QUERY_STRING", "")
        subtype = ("queue-list" if kind == "queue" else "task-list") + (" search" if query else "")
        cursor.execute(
            _AUDIT_SQL,
            [
                timezone.now(),
                user_id,
                username,
                subtype,
                json.dumps([str(r["id"]) for r in results][:MAX_ENTITY_IDS]),
                request.path[:500],
                query[:2000],
                request.META.get("REMOTE_ADDR") or None,
                uuid.uuid4().hex,
            ],
        )
    url = request.build_absolute_uri()
    next_link = None
    if has_more:
        next_link = replace_query_param(replace_query_param(url, "limit", limit), "offset", offset + limit)
    previous = None
    if offset > 0:
        url_limit = replace_query_param(url, "limit", limit)
        previous = (
            remove_query_param(url_limit, "offset")
            if offset - limit <= 0
            else replace_query_param(url_limit, "offset", offset - limit)
        )
    body = {"count": count, "next": next_link, "previous": previous, "results": results}
    # DRF's JSONRenderer: compact, UTF-8, with U+2028/2029 escaped for JavaScript.
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    content = content.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return HttpResponse(content.encode(), content_type="application/json")


def _compile_page(kind: str, user_id: int, filters: Any, limit: int, offset: int) -> _Compiled | HttpResponse:
    """The queryset the API view builds for this page (same selector, same filterset), compiled once."""
    user = User.objects.get(pk=user_id)
    base = task_queue_for_user(user=user) if kind == "queue" else task_list(user=user)
    # The filterset reads request.user (assignee=me, pool=true) and nothing else from the request.
    filterset = TaskFilter(filters, queryset=base, request=SimpleNamespace(user=user))  # type: ignore[arg-type]
    if not filterset.is_valid():
        return _error(400, "invalid", json.dumps(filterset.errors))
    # The paginator's rule, with what the API views say (QueueViewSet; TaskViewSet.total_with_page).
    view = SimpleNamespace(total_with_page=kind == "queue" or scope_tasks_is_own_work(user))
    in_page = BoundedLimitOffsetPagination.total_in_page(filterset.qs, view)
    return _compile(filterset.qs, limit, offset, in_page=in_page)


def floor_queue(request: HttpRequest) -> HttpResponse:
    """Floor of GET /api/v1/queue/."""
    return _page(request, "queue")


def floor_tasks(request: HttpRequest) -> HttpResponse:
    """Floor of GET /api/v1/tasks/ (with the same filters)."""
    return _page(request, "tasks")
