"""Domain errors. The API's exception handler maps each `http_status` to a response of one shape:
{"error": {"code": ..., "message": ..., "fields": ...}}."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    code = "domain_error"
    http_status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidInput(DomainError):
    code = "invalid"
    http_status = 400


class NotPermitted(DomainError):
    code = "not_permitted"
    http_status = 403


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class IllegalTransition(Conflict):
    code = "illegal_transition"


class StaleVersion(Conflict):
    code = "stale_version"


class AlreadyEnrolled(Conflict):
    code = "already_enrolled"


class ContentError(DomainError):
    """Invalid pathway content: names the file, the template (or rule) code and the field."""

    code = "invalid_content"

    def __init__(self, problems: list[tuple[str, str, str, str]]) -> None:
        # (file, code, field, message)
        self.problems = problems
        lines = [f"{f}: {code or '-'}: {field}: {msg}" for f, code, field, msg in problems]
        super().__init__("invalid pathway content:\n  " + "\n  ".join(lines))


class UnsupportedMediaType(DomainError):
    """An upload whose content is not of an accepted type (read from the bytes, not the name)."""

    code = "unsupported_media_type"
    http_status = 415


class TooLarge(DomainError):
    """An upload over a documented size or pixel limit."""

    code = "too_large"
    http_status = 413
