"""The one exception handler: every error the API returns has the shape
{"error": {"code": "...", "message": "...", "fields": {...}}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from pathways.api.parsers import RequestTooLarge
from pathways.errors import DomainError


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF error details (nested dicts/lists) as {"field" or "field.sub": ["message", ...]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in _flatten(value, name).items():
                out.setdefault(field, []).extend(messages)
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            for field, messages in _flatten(item, f"{prefix}.{index}" if prefix else str(index)).items():
                out.setdefault(field, []).extend(messages)
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def error_response(
    *, code: str, message: str, http_status: int, fields: dict[str, list[str]] | None = None
) -> Response:
    return Response({"error": {"code": code, "message": message, "fields": fields or {}}}, status=http_status)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain and DRF errors to one JSON shape; anything else is a bug and stays a 500."""
    if isinstance(exc, DomainError):
        response = error_response(code=exc.code, message=exc.message, http_status=exc.http_status, fields=exc.fields)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        # Django's own size check (request.body, forms): the same 413 as the JSON parser's, not an HTML 400.
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        # Too many form fields, a malformed multipart body: the client's fault, answered in the error shape.
        exc = exceptions.ParseError("request body cannot be read")
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # DRF answers 401 only with a WWW-Authenticate challenge; API clients authenticate with a token.
        exc.status_code = status.HTTP_401_UNAUTHORIZED
        headers["WWW-Authenticate"] = 'Token realm="api"'
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(int(wait))

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "invalid input: " + "; ".join(f"{f}: {' '.join(m)}" for f, m in fields.items())
        code = "invalid"
    else:
        fields = {}
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc.default_detail)
        code = exc.default_code if isinstance(exc.default_code, str) else "error"
        if isinstance(exc, exceptions.ParseError):
            code = "invalid"
    response = error_response(code=code, message=message, http_status=exc.status_code, fields=fields)
    for name, value in headers.items():
        response[name] = value
    return response
