"""The request being served, as the audit trail and the logs see it (no model imports: logging loads this
before Django's app registry is ready)."""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass, field


@dataclass
class RequestContext:
    """What the audit trail needs to know about the request being served."""

    request_id: str
    source_address: str | None = None
    method: str = ""
    path: str = ""
    # Set by audit_record: the middleware then does not add a generic event for the same request.
    recorded: bool = False


@dataclass
class AuditNote:
    """What a view tells the audit middleware about the request it served (all optional)."""

    entity_type: str = ""
    entity_id: str = ""
    entity_ids: list[str] = field(default_factory=list)
    patient_id: int | None = None
    subtype: str = ""
    action: str = ""


_current_request: ContextVar[RequestContext | None] = ContextVar("carepath_request", default=None)


def current_request() -> RequestContext | None:
    return _current_request.get()


def current_request_id() -> str:
    context = _current_request.get()
    return context.request_id if context else ""


def request_context_enter(context: RequestContext) -> Token[RequestContext | None]:
    return _current_request.set(context)


def request_context_exit(token: Token[RequestContext | None]) -> None:
    _current_request.reset(token)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record ("-" outside a request), so logs and audit events join up."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True
