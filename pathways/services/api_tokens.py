"""API tokens for people and for service accounts (issue 18): issued, rotated and revoked here only.

A key is `cp_` + 43 URL-safe characters (256 random bits) and is shown once, when issued. The database keeps
its SHA-256: a fast hash is right for a random key of this length (there is nothing to guess), and it lets
the lookup be one indexed equality. A token has an expiry (always) and an allow-list of operations
(TokenScope values; a person's token carries "*", what their roles allow). A service account's token is
bounded by the account's roles and sites as well, since scoping is pathways.selectors.access's.
Every issue, rotation and revocation is an audit event (the key never is).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pathways.choices import AuditAction, Role, TokenScope
from pathways.errors import InvalidInput, NotFound, NotPermitted
from pathways.models import ApiToken, ServiceAccount, Site, User
from pathways.selectors.access import is_admin
from pathways.services.audit import audit_record

KEY_PREFIX = "cp_"


def api_token_hash(key: str) -> str:
    """The stored form of a key: SHA-256, hex (64 characters)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _audit(*, subtype: str, token: ApiToken, actor: User | None, now: dt.datetime) -> None:
    audit_record(
        action=AuditAction.UPDATE if subtype != "token.issue" else AuditAction.CREATE,
        subtype=subtype,
        actor=actor,
        # None: an operator at the command line (manage.py api_token).
        actor_username="" if actor is not None else "manage.py",
        entity_type="apitoken",
        entity_id=token.pk,
        outcome_desc=f"user {token.user_id} token {token.prefix}",
        now=now,
    )


def _require_admin(actor: User | None) -> None:
    if actor is not None and not is_admin(actor):
        raise NotPermitted("only an admin may manage service accounts and their tokens")


def _validated_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(TokenScope.values))
    if not scopes:
        raise InvalidInput("at least one scope is required", fields={"scopes": ["at least one is required"]})
    if unknown:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(unknown)}",
            fields={"scopes": [f"unknown: {', '.join(unknown)}; choose from {', '.join(TokenScope.values)}"]},
        )
    return sorted(set(scopes))


@transaction.atomic
def api_token_issue(
    *,
    user: User,
    scopes: list[str] | None = None,
    name: str = "",
    lifetime: dt.timedelta | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
    rotated_from: ApiToken | None = None,
    audit: bool = True,
) -> tuple[ApiToken, str]:
    """Issue a token to `user`; returns (token, key). The key is not stored and cannot be shown again.

    A person's token has scopes ["*"] and expires after API_TOKEN_LIFETIME_DAYS. A service account's needs
    `scopes` (TokenScope values; InvalidInput otherwise) and expires after `lifetime` (default
    SERVICE_TOKEN_LIFETIME_DAYS, at most SERVICE_TOKEN_MAX_LIFETIME_DAYS). `actor` (an admin, else
    NotPermitted) issues a service account's token; a person's own login issues theirs with actor None.
    `audit=False` is for callers whose own audit event covers the issue (the login that asked for the token,
    the rotation): one request, one event."""
    now = now or timezone.now()
    is_service = ServiceAccount.objects.filter(user=user).exists()
    if is_service:
        _require_admin(actor)
        scopes = _validated_scopes(scopes or [])
        lifetime = lifetime or dt.timedelta(days=settings.SERVICE_TOKEN_LIFETIME_DAYS)
        longest = dt.timedelta(days=settings.SERVICE_TOKEN_MAX_LIFETIME_DAYS)
        if lifetime <= dt.timedelta(0) or lifetime > longest:
            raise InvalidInput(
                f"a service token's lifetime must be between 1 second and {longest.days} days",
                fields={"expires": [f"at most {longest.days} days"]},
            )
    else:
        actor = user
        scopes = [TokenScope.ALL]
        lifetime = dt.timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=key[:10],
        key_hash=api_token_hash(key),
        scopes=scopes,
        created_at=now,
        expires_at=now + lifetime,
        rotated_from=rotated_from,
    )
    if audit:
        _audit(subtype="token.issue", token=token, actor=actor, now=now)
    return token, key


def _locked_token(token_id: int) -> ApiToken:
    token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
    if token is None:
        raise NotFound(f"no API token {token_id}")
    return token


@transaction.atomic
def api_token_revoke(*, token_id: int, actor: User | None, now: dt.datetime | None = None) -> ApiToken:
    """Revoke a token at once (its next request is a 401). Revoking a revoked token changes nothing.
    `actor` must be an admin (NotPermitted), or None for a management command run by an operator."""
    _require_admin(actor)
    now = now or timezone.now()
    token = _locked_token(token_id)
    if token.revoked_at is None:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        _audit(subtype="token.revoke", token=token, actor=actor, now=now)
    return token


@transaction.atomic
def api_token_rotate(
    *, token_id: int, actor: User | None, lifetime: dt.timedelta | None = None, now: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """Replace a live token with a new key of the same name and scopes, and revoke the old one in the same
    transaction; returns (new token, new key). A revoked or expired token cannot be rotated (InvalidInput)."""
    _require_admin(actor)
    now = now or timezone.now()
    old = _locked_token(token_id)
    if old.revoked_at is not None or old.expires_at <= now:
        raise InvalidInput(f"token {token_id} is revoked or expired; issue a new one")
    old.revoked_at = now
    old.save(update_fields=["revoked_at"])
    new, key = api_token_issue(
        user=old.user,
        scopes=list(old.scopes),
        name=old.name,
        lifetime=lifetime,
        actor=actor,
        now=now,
        rotated_from=old,
        audit=False,
    )
    _audit(subtype="token.rotate", token=new, actor=actor, now=now)
    return new, key


@transaction.atomic
def service_account_create(
    *, username: str, roles: list[str], site_codes: list[str], description: str = "", actor: User | None
) -> User:
    """Create a non-person account: no password, the given roles (Role values) and sites (Site codes). Its
    tokens can reach no more than these allow. Raises InvalidInput for unknown roles or sites, or a taken
    username; NotPermitted unless `actor` is an admin (None: an operator's management command)."""
    _require_admin(actor)
    problems: dict[str, list[str]] = {}
    try:
        # Django's own username rule (letters, digits and @.+-_), and new regardless of case: the audit trail and
        # `manage.py api_token issue <name>` name accounts by it.
        UnicodeUsernameValidator()(username)
    except ValidationError:
        problems["username"] = ["use letters, digits and @ . + - _ only (no spaces), e.g. lab-chicago"]
    if not username.strip() or User.objects.filter(username__iexact=username).exists():
        problems["username"] = ["is required and must be new (usernames are compared without regard to case)"]
    unknown_roles = sorted(set(roles) - set(Role.values))
    if not roles or unknown_roles:
        problems["roles"] = [f"choose from {', '.join(Role.values)}"]
    if Role.ADMIN in roles:
        problems["roles"] = ["a service account cannot be an admin"]
    sites = list(Site.objects.filter(code__in=site_codes))
    if not site_codes or len(sites) != len(set(site_codes)):
        problems["sites"] = ["at least one, all known site codes"]
    if problems:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()), fields=problems)
    user = User.objects.create_user(username=username, password=None, roles=sorted(set(roles)))
    user.sites.set(sites)
    ServiceAccount.objects.create(user=user, description=description[:200], created_by=actor)
    audit_record(
        action=AuditAction.CREATE,
        subtype="service_account.create",
        actor=actor,
        actor_username="" if actor is not None else "manage.py",
        entity_type="user",
        entity_id=user.pk,
    )
    return user
