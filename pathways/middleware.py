"""Request ids and the audit trail for every request that can touch patient data.

AuditMiddleware is the ONE mechanism that audits API, dashboard and workspace requests (docs/audit.md):
- it gives each request an id (a sane incoming X-Request-ID is kept, else a new UUID) that is echoed in the
  response, attached to log records, and stored on the audit event;
- it runs the view inside one database transaction and, before that transaction commits, appends an
  AuditEvent describing the request (actor, action, entity, patient, outcome). A change and its audit event
  therefore commit together or not at all; a failed audit write rolls the change back;
- denied requests (401, 403, 404, 429) and invalid ones are audited too, with their outcome; a server error
  rolls the view's writes back and is then audited in a transaction of its own.
Views add detail (entity, ids, patient) with `audit_note`; services that audit themselves (login) mark the
request as recorded and the middleware adds nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from pathways.choices import AuditAction
from pathways.models import User
from pathways.request_context import (
    AuditNote,
    RequestContext,
    client_address,
    request_context_enter,
    request_context_exit,
)
from pathways.services.audit import audit_record, outcome_for_status

# Everything that serves or changes data is audited, the workspace at the site root included (so a new page
# cannot be forgotten); only static files, the health check, the favicon redirect and the benchmarks' bare
# floor views are not.
UNAUDITED_PREFIXES = ("/static/", "/healthz", "/favicon.ico", "/bench-floor/")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Error codes in the API's one error shape, kept as the outcome description.
_MAX_QUERY = 2000


def audit_note(request: Any, **details: Any) -> AuditNote:
    """Tell the audit middleware what this request read or changed (entity_type, entity_id, entity_ids,
    patient_id, subtype, action). Works with Django and DRF requests; later calls fill in more."""
    django_request = getattr(request, "_request", request)
    note: AuditNote | None = getattr(django_request, "audit_note", None)
    if note is None:
        note = AuditNote()
        django_request.audit_note = note
    for name, value in details.items():
        if value is not None and value != "":
            setattr(note, name, value)
    return note


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        context = RequestContext(
            request_id=request_id,
            # X-Forwarded-For only from the configured proxies: a client must not choose the recorded address.
            source_address=client_address(request),
            method=request.method or "",
            path=_storable(request.path),
        )
        token = request_context_enter(context)
        try:
            if request.path.startswith(UNAUDITED_PREFIXES):
                response = self.get_response(request)
            else:
                response = self._audited(request, context)
        finally:
            request_context_exit(token)
        response["X-Request-ID"] = request_id
        return response

    def _audited(self, request: HttpRequest, context: RequestContext) -> HttpResponse:
        with transaction.atomic():
            response = self.get_response(request)
            failed = response.status_code >= 500
            if failed:
                # Django turned an exception into this response inside the block: undo the view's writes.
                transaction.set_rollback(True)
            elif not context.recorded:
                self._record(request, response)
        if failed and not context.recorded:
            self._record(request, response)
        return response

    def _record(self, request: HttpRequest, response: HttpResponse) -> None:
        note: AuditNote = getattr(request, "audit_note", None) or AuditNote()
        match = request.resolver_match
        route = (match.url_name or "") if match else ""
        user = getattr(request, "user", None)
        actor = user if isinstance(user, User) and user.is_authenticated else None
        status = response.status_code
        method = request.method or "GET"
        query = request.META.get("QUERY_STRING", "")[:_MAX_QUERY]
        if note.action:
            action = note.action
        elif method in ("GET", "HEAD", "OPTIONS"):
            action = AuditAction.READ
        elif method == "DELETE":
            action = AuditAction.DELETE
        elif method == "POST" and status == 201:
            action = AuditAction.CREATE
        else:
            action = AuditAction.UPDATE
        entity_type = note.entity_type or _entity_from_route(route)
        entity_id = _storable(note.entity_id or (str(match.kwargs.get("pk", "")) if match else ""))
        subtype = note.subtype or route or _storable(request.path)[:64]
        if action == AuditAction.READ and not note.subtype and query:
            subtype = f"{subtype} search"
        audit_record(
            action=action,
            subtype=subtype,
            outcome=outcome_for_status(status),
            outcome_desc=_error_code(response),
            http_status=status,
            actor=actor,
            entity_type=entity_type,
            entity_id=entity_id,
            entity_ids=note.entity_ids,
            patient_id=note.patient_id,
            query=query,
        )


def _storable(text: str) -> str:
    """`text` with NUL made visible: PostgreSQL text cannot hold NUL, and a path such as /patients/%00/ must
    still be audited rather than fail the audit write (a 500, issue 12)."""
    return text.replace("\x00", "\\x00")


def _entity_from_route(route: str) -> str:
    # DRF router names are "<basename>-<suffix>": task-detail -> task, enrollment-care-team -> enrollment.
    for suffix in ("-list", "-detail"):
        if route.endswith(suffix):
            return route[: -len(suffix)]
    return route.split("-")[0] if route else ""


def _error_code(response: HttpResponse) -> str:
    data = getattr(response, "data", None)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("code", ""))[:200]
    return "" if response.status_code < 400 else (response.reason_phrase or "")[:200]
