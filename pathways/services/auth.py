"""Token login with brute-force protection: failed attempts counted atomically in the database.

DRF's cache throttle alone is per process (LocMemCache) and resets on restart; the LoginThrottle row is shared
by every web process, so the count holds under concurrency and across restarts.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token

from pathways.choices import AuditAction, AuditOutcome
from pathways.errors import DomainError
from pathways.models import LoginThrottle, User
from pathways.services.audit import audit_record

logger = logging.getLogger(__name__)

_CONFIG = getattr(settings, "CAREPATH", {})
# Failures allowed per username (and, more generously, per client address) within the window.
MAX_FAILURES_PER_USERNAME: int = _CONFIG.get("LOGIN_MAX_FAILURES", 5)
MAX_FAILURES_PER_ADDRESS: int = _CONFIG.get("LOGIN_MAX_FAILURES_PER_ADDRESS", 50)
WINDOW = dt.timedelta(minutes=_CONFIG.get("LOGIN_WINDOW_MINUTES", 15))
LOCKOUT = dt.timedelta(minutes=_CONFIG.get("LOGIN_LOCKOUT_MINUTES", 15))


class LoginLocked(DomainError):
    """Too many failed logins for this username or address; retry after `retry_after` seconds."""

    code = "throttled"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginFailed(DomainError):
    code = "authentication_failed"
    http_status = 401


def _keys(username: str, address: str | None) -> list[tuple[str, int]]:
    # Usernames are case-folded so that "Alice" and "alice" share a counter; unknown usernames count too,
    # so the response never reveals whether an account exists.
    keys = [(f"user:{username.strip().casefold()}"[:255], MAX_FAILURES_PER_USERNAME)]
    if address:
        keys.append((f"addr:{address}"[:255], MAX_FAILURES_PER_ADDRESS))
    return keys


def login_locked_until(*, username: str, address: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """The latest lock in force for this username or address, or None."""
    now = now or timezone.now()
    locks = [
        until
        for until in LoginThrottle.objects.filter(
            key__in=[k for k, _ in _keys(username, address)], locked_until__gt=now
        ).values_list("locked_until", flat=True)
        if until is not None
    ]
    return max(locks, default=None)


@transaction.atomic
def login_failure_record(*, username: str, address: str | None, now: dt.datetime | None = None) -> None:
    """Count one failed login against the username and the address; lock a key that reaches its limit."""
    now = now or timezone.now()
    for key, limit in _keys(username, address):
        row, _ = LoginThrottle.objects.select_for_update().get_or_create(key=key, defaults={"window_started_at": now})
        if now - row.window_started_at > WINDOW:
            LoginThrottle.objects.filter(pk=row.pk).update(failures=0, window_started_at=now)
        # F() keeps the increment in the database: two processes failing at once both count.
        LoginThrottle.objects.filter(pk=row.pk).update(failures=F("failures") + 1, last_failure_at=now)
        LoginThrottle.objects.filter(pk=row.pk, failures__gte=limit).update(locked_until=now + LOCKOUT)
        logger.warning("login failed throttle_id=%s", row.pk)
    audit_record(
        action=AuditAction.EXECUTE,
        subtype="login",
        outcome=AuditOutcome.SERIOUS_FAILURE,
        outcome_desc="authentication_failed",
        actor_username=username,
        entity_type="user",
        now=now,
    )


@transaction.atomic
def login_success_record(*, user: User, username: str, now: dt.datetime | None = None) -> None:
    """A correct password clears the username's failure count and stamps last_login."""
    now = now or timezone.now()
    key, _ = _keys(username, None)[0]
    LoginThrottle.objects.filter(key=key).update(failures=0, window_started_at=now, locked_until=None)
    update_last_login(User, user)
    logger.info("login succeeded user_id=%s", user.pk)
    audit_record(
        action=AuditAction.EXECUTE, subtype="login", actor=user, entity_type="user", entity_id=user.pk, now=now
    )


def auth_login(*, username: str, password: str, address: str | None, now: dt.datetime | None = None) -> User:
    """Check the credentials unless locked out; every success, failure and lockout is counted and audited.

    Shared by the token endpoint and the dashboard's login page, so both obey the same lockout."""
    now = now or timezone.now()
    locked_until = login_locked_until(username=username, address=address, now=now)
    if locked_until is not None:
        # Checked before the password: a locked account cannot be guessed even with the right password.
        retry_after = max(int((locked_until - now).total_seconds()), 1)
        audit_record(
            action=AuditAction.EXECUTE,
            subtype="login",
            outcome=AuditOutcome.SERIOUS_FAILURE,
            outcome_desc="throttled",
            actor_username=username,
            entity_type="user",
            http_status=429,
            now=now,
        )
        raise LoginLocked(f"too many failed logins; try again in {retry_after} seconds", retry_after=retry_after)
    user = authenticate(username=username, password=password)
    if not isinstance(user, User):
        login_failure_record(username=username, address=address, now=now)
        raise LoginFailed("unable to log in with the provided credentials")
    login_success_record(user=user, username=username, now=now)
    return user


def auth_token_obtain(*, username: str, password: str, address: str | None, now: dt.datetime | None = None) -> str:
    """Check the credentials (unless locked out) and return the user's API token, creating it on first login."""
    # Not one transaction: a failed attempt must stay counted (and audited) when LoginFailed propagates.
    user = auth_login(username=username, password=password, address=address, now=now)
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
