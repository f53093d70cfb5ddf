"""Login with a lockout that fits a hospital: django-axes counts failures per (username, client address) pair.

All staff of a hospital usually reach the service from one NAT address, so the lock is on the combination:
failures against one account from one address lock that account at that address only, and credential stuffing
over many usernames from the shared address locks none of the colleagues there (issue 12, section 8). The rate
of attempts per address is DRF's throttle on the token endpoint (pathways.api.auth). The client address is
pathways.request_context.client_address (X-Forwarded-For only from TRUSTED_PROXY_COUNT proxies). Settings:
AXES_* in carepath/settings.py, documented in docs/operations.md ("Login lockout").
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from pathways.choices import AuditAction, AuditOutcome
from pathways.errors import DomainError
from pathways.models import User
from pathways.request_context import client_address
from pathways.services.api_tokens import api_token_issue
from pathways.services.audit import audit_record

logger = logging.getLogger(__name__)


class LoginLocked(DomainError):
    """Too many failed logins for this username from this address; retry after `retry_after` seconds."""

    code = "throttled"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LocalLoginDisabled(DomainError):
    """LOCAL_LOGIN_ENABLED is off: usernames and passwords are not accepted at all."""

    code = "local_login_disabled"
    http_status = 403


class LoginFailed(DomainError):
    code = "authentication_failed"
    http_status = 401


def axes_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """AXES_USERNAME_CALLABLE: usernames are counted case-folded, so "Alice" and "alice" share a counter.
    Unknown usernames are counted too, so the answers never reveal whether an account exists."""
    return str((credentials or {}).get("username") or "").strip().casefold()[:150]


def axes_exempt(request: HttpRequest | None, credentials: dict[str, Any] | None) -> bool:
    """AXES_WHITELIST_CALLABLE: the OpenID Connect callback is not a password login. Its authenticate() call
    carries the PKCE verifier and nonce but no username, so counting it would lock the empty username at the
    hospital's NAT address after a few refused sign-ons and then refuse everyone's sign-on from there; the
    identity provider runs its own lockout."""
    return "code_verifier" in (credentials or {})


def axes_keep_response(request: HttpRequest, original_response: HttpResponse, credentials: Any = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login views already answer a lockout (429 with Retry-After in the API's error
    shape, a form error on the dashboard), so axes' middleware keeps their response."""
    return original_response


def _retry_after(request: HttpRequest, username: str) -> int:
    cool_off = get_cool_off(request) or dt.timedelta(minutes=15)
    last = AccessAttempt.objects.filter(username=username, ip_address=client_address(request)).aggregate(
        last=Max("attempt_time")
    )["last"]
    remaining = (last + cool_off - timezone.now()) if last else cool_off
    return max(int(remaining.total_seconds()), 1)


def _audit_failure(*, username: str, reason: str, http_status: int, now: dt.datetime | None) -> None:
    audit_record(
        action=AuditAction.EXECUTE,
        subtype="login",
        outcome=AuditOutcome.SERIOUS_FAILURE,
        outcome_desc=reason,
        actor_username=username,
        entity_type="user",
        http_status=http_status,
        now=now,
    )


def auth_login(*, request: HttpRequest, username: str, password: str, now: dt.datetime | None = None) -> User:
    """Check the credentials unless this username is locked out at this address; returns the user.

    `request` is the Django request (axes reads its client address). Raises LoginLocked (checked before the
    password, so a locked account cannot be guessed even with the right password; `retry_after` in seconds),
    LocalLoginDisabled (when LOCAL_LOGIN_ENABLED is off) or LoginFailed. Every success, failure and lockout is
    audited; a failure is counted by axes (Django's user_login_failed signal) and logged once, without the
    username. Shared by the token endpoint and the dashboard's login page, so both obey the same lockout.
    """
    if not settings.LOCAL_LOGIN_ENABLED:
        # Sign-on goes through the hospital's identity provider only (LOCAL_LOGIN_ENABLED=0, docs/security.md).
        _audit_failure(username=username, reason="local_login_disabled", http_status=403, now=now)
        raise LocalLoginDisabled("local passwords are switched off; sign in through the identity provider")
    credentials = {"username": username}
    if AxesProxyHandler.is_locked(request, credentials):
        retry_after = _retry_after(request, axes_username(request, credentials))
        _audit_failure(username=username, reason="throttled", http_status=429, now=now)
        raise LoginLocked(f"too many failed logins; try again in {retry_after} seconds", retry_after=retry_after)
    user = authenticate(request, username=username, password=password)
    if not isinstance(user, User):
        _audit_failure(username=username, reason="authentication_failed", http_status=401, now=now)
        failures = AxesProxyHandler.get_failures(request, credentials)
        logger.warning("login failed (%s of %s allowed)", failures, settings.AXES_FAILURE_LIMIT)
        raise LoginFailed("unable to log in with the provided credentials")
    # The attempts of this username at this address start again (AXES_RESET_ON_SUCCESS).
    AxesProxyHandler.user_logged_in(User, request, user)
    update_last_login(User, user)
    logger.info("login succeeded user_id=%s", user.pk)
    audit_record(
        action=AuditAction.EXECUTE, subtype="login", actor=user, entity_type="user", entity_id=user.pk, now=now
    )
    return user


def auth_token_obtain(*, request: HttpRequest, username: str, password: str, now: dt.datetime | None = None) -> str:
    """Check the credentials (unless locked out) and return a new API token for the user: a person's token,
    expiring after API_TOKEN_LIFETIME_DAYS (pathways.services.api_tokens); the key is not stored.

    Raises LoginLocked or LoginFailed as auth_login does."""
    # Not one transaction: a failed attempt must stay counted (and audited) when LoginFailed propagates.
    user = auth_login(request=request, username=username, password=password, now=now)
    # The login's own audit event (path /api/v1/auth/token/) records the issue.
    _, key = api_token_issue(user=user, name="login", now=now, audit=False)
    return key
