"""Sign-on through the hospital's OpenID Connect provider, logoff and session expiry (issue 18).

Who the user is comes from the ID token's (iss, sub) pair; what they may do comes from the provider's claims,
mapped to Carepath roles and sites by the data file OIDC_CLAIM_MAP_FILE (pathways.domain.claim_map). Roles and
sites are rewritten at every sign-on, so a user removed from a group at the provider loses that role at the
next sign-on; care-team membership is not touched (coordinators decide it in Carepath).

Every sign-on, refusal, logoff and expiry is one audit event. Claims are never logged or audited: events carry
the Carepath username and a reason code only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pathways.choices import AuditAction, AuditOutcome, Role
from pathways.domain.claim_map import ClaimMap
from pathways.models import ExternalIdentity, Site, User
from pathways.services.audit import audit_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignOnOutcome:
    """What sign_on_user_sync decided: the user (None when none could be identified) and, when Carepath gives
    them no session, `refusal`, one of REFUSAL_REASONS' keys ("" on success)."""

    user: User | None
    refusal: str = ""


# Reason code -> the explanation the refusal page gives (the code is what the audit event keeps).
REFUSAL_REASONS = {
    "no_role": "Your account at the hospital's identity provider is not in any group that gives a Carepath role.",
    "no_site": "Your groups give a Carepath role but no site, so there is nothing you could see.",
    "deactivated": "Your Carepath account has been deactivated.",
    "username_taken": "A Carepath account with your username exists but is not linked to your hospital sign-on.",
    "missing_claims": "The identity provider did not send the claims Carepath needs (subject and username).",
    "invalid_token": "The identity provider's answer could not be verified.",
    "provider_error": "The identity provider could not be reached or refused the sign-in.",
}


def _audit_sign_on_failure(
    *, reason: str, username: str = "", user: User | None = None, now: dt.datetime | None
) -> None:
    audit_record(
        action=AuditAction.EXECUTE,
        subtype="login.oidc",
        outcome=AuditOutcome.SERIOUS_FAILURE,
        outcome_desc=reason,
        actor=user,
        actor_username=username,
        entity_type="user",
        entity_id=user.pk if user is not None else "",
        http_status=403,
        now=now,
    )


def sign_on_failed(*, reason: str, now: dt.datetime | None = None) -> None:
    """Audit a sign-on that failed before a user was known (bad state, tampered or expired ID token, provider
    unreachable). `reason` is a short code such as "invalid_token"; never the token or its claims."""
    logger.warning("sign-on failed: %s", reason)
    _audit_sign_on_failure(reason=reason, now=now)


def _claim_str(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""


@transaction.atomic
def sign_on_user_sync(*, issuer: str, claims: Mapping[str, Any], now: dt.datetime | None = None) -> SignOnOutcome:
    """Find or create the user the provider vouched for and rewrite their roles and sites from the claims.

    `claims` are the verified ID token's claims merged with the userinfo response. The user is found by
    (issuer, claims["sub"]); a new one is created with the username claim (OIDC_CLAIM_USERNAME). Roles and
    sites come from the claim map; unknown site codes are ignored. Returns the outcome: the user, ready for
    login(), or a refusal ("missing_claims", "username_taken", "deactivated", "no_role" or "no_site"). A
    refused user's roles are still rewritten (an empty mapping removes them), so a user removed from every
    group keeps nothing. Success and refusal are audited in the same transaction as the rewrite.
    """
    now = now or timezone.now()
    subject = _claim_str(claims, "sub")
    username = _claim_str(claims, settings.OIDC_CLAIM_USERNAME)[:150]
    if not subject or not username:
        _audit_sign_on_failure(reason="missing_claims", username=username, now=now)
        return SignOnOutcome(user=None, refusal="missing_claims")

    identity = ExternalIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is None:
        if User.objects.filter(username=username).exists():
            _audit_sign_on_failure(reason="username_taken", username=username, now=now)
            return SignOnOutcome(user=None, refusal="username_taken")
        user = User.objects.create_user(username=username, password=None)
        identity = ExternalIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    user = identity.user
    if not user.is_active:
        _audit_sign_on_failure(reason="deactivated", user=user, now=now)
        return SignOnOutcome(user=user, refusal="deactivated")

    grant = ClaimMap.from_file(settings.OIDC_CLAIM_MAP_FILE, default_claim=settings.OIDC_CLAIM_GROUPS).grant_for(claims)
    sites = list(Site.objects.filter(code__in=grant.sites))
    user.roles = sorted(grant.roles)
    user.is_staff = user.is_superuser = Role.ADMIN in grant.roles
    user.email = _claim_str(claims, settings.OIDC_CLAIM_EMAIL)[:254]
    user.first_name = _claim_str(claims, "given_name")[:150]
    user.last_name = _claim_str(claims, "family_name")[:150]
    user.last_login = now
    user.save(update_fields=["roles", "is_staff", "is_superuser", "email", "first_name", "last_name", "last_login"])
    user.sites.set(sites)
    identity.last_login_at = now
    identity.save(update_fields=["last_login_at"])

    if not grant.roles:
        _audit_sign_on_failure(reason="no_role", user=user, now=now)
        return SignOnOutcome(user=user, refusal="no_role")
    if not sites:
        _audit_sign_on_failure(reason="no_site", user=user, now=now)
        return SignOnOutcome(user=user, refusal="no_site")
    logger.info("sign-on succeeded user_id=%s", user.pk)
    audit_record(
        action=AuditAction.EXECUTE, subtype="login.oidc", actor=user, entity_type="user", entity_id=user.pk, now=now
    )
    return SignOnOutcome(user=user)


def session_end_record(*, user: User, reason: str, now: dt.datetime | None = None) -> None:
    """Audit the end of a session. `reason`: "logout" (the user logged off), "idle" (no request for
    SESSION_IDLE_TIMEOUT) or "absolute" (SESSION_ABSOLUTE_LIFETIME reached)."""
    audit_record(
        action=AuditAction.EXECUTE,
        subtype="logout" if reason == "logout" else "session.expired",
        outcome_desc=reason,
        actor=user,
        entity_type="user",
        entity_id=user.pk,
        now=now,
    )
