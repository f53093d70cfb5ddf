"""The request being served, as the audit trail and the logs see it (no model imports: logging loads this
before Django's app registry is ready)."""

from __future__ import annotations

import ipaddress
import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings


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


def client_address(request: Any) -> str | None:
    """The client's IP address, for the audit trail, the login lockout (django-axes) and DRF's throttles.

    REMOTE_ADDR, unless TRUSTED_PROXY_COUNT (n) proxies stand in front of the application: then the n-th
    address from the right of X-Forwarded-For, the one the outermost trusted proxy saw. Entries further left
    are whatever the client sent, so rotating them changes nothing. This is DRF's NUM_PROXIES rule, so the
    three agree. None when there is no usable address.
    """
    meta = getattr(request, "META", {})
    address = meta.get("REMOTE_ADDR") or None
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    forwarded = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if proxies > 0 and forwarded:
        address = forwarded[-min(proxies, len(forwarded))]
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:  # a proxy that forwards garbage must not break the audit row's address column
        return None


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record ("-" outside a request), so logs and audit events join up."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class ClientErrorLogFilter(logging.Filter):
    """On django.request: a client error (4xx) is one line, without the traceback Django attaches to a 403;
    a 401 is not logged at all, because the audit trail records every one and the login service logs each
    failed login once itself (issue 12, section 7). Server errors keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not isinstance(status, int) or status >= 500:
            return True
        if status == 401:
            return False
        record.exc_info = None
        record.exc_text = None
        return True
