"""Sign-on through the hospital's OpenID Connect provider, on mozilla-django-oidc (docs/security.md says why).

The library runs the authorization code flow with PKCE (S256), keeps state and nonce in the session and checks
both on the callback. Carepath adds what it leaves out or to code:
- discovery: endpoints come from the provider's discovery document (OIDC_DISCOVERY_URL, by default under
  OIDC_OP_ISSUER), fetched on first use, unless set one by one in the environment;
- the ID token's issuer and audience are checked as well as its signature and expiry (the library decodes with
  `verify_aud` off and never looks at `iss`);
- the user, roles and sites come from pathways.services.sign_on (the claim map), and a refusal is a page that
  says why, never a bare error;
- logoff is audited and also ends the provider's session where it offers RP-initiated logout.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
    OIDCLogoutView,
)

from pathways.models import User
from pathways.services.sign_on import REFUSAL_REASONS, session_end_record, sign_on_failed, sign_on_user_sync

logger = logging.getLogger(__name__)

# Setting -> the discovery document's key (OpenID Connect Discovery 1.0, section 3; RP-Initiated Logout 1.0).
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_END_SESSION_ENDPOINT": "end_session_endpoint",
}
_discovery_cache: dict[str, dict[str, Any]] = {}
# What a failed sign-on can raise on the way: the library's own checks, the ID token checks, the network.
SIGN_ON_ERRORS = (SuspiciousOperation, jwt.PyJWTError, requests.RequestException, ImproperlyConfigured)


def oidc_discovery() -> dict[str, Any]:
    """The provider's discovery document, fetched once per process and URL ({} when none is configured).

    Raises requests.RequestException when the provider cannot be reached, ImproperlyConfigured when the
    document's issuer is not OIDC_OP_ISSUER (Discovery 1.0, section 4.3: they must be identical)."""
    url = settings.OIDC_DISCOVERY_URL
    if not url:
        return {}
    document = _discovery_cache.get(url)
    if document is None:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != settings.OIDC_OP_ISSUER:
            raise ImproperlyConfigured("the discovery document's issuer is not OIDC_OP_ISSUER")
        _discovery_cache[url] = document
    return document


def oidc_setting(attr: str, *default: Any) -> Any:
    """A mozilla-django-oidc setting: from Django settings, else (for an endpoint) from discovery."""
    if attr in DISCOVERED and not getattr(settings, attr, ""):
        value = oidc_discovery().get(DISCOVERED[attr])
        if value:
            return value
    return import_from_settings(attr, *default)


class CarepathOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """The library's backend with lazy settings, full ID token validation and Carepath's user sync."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library reads every endpoint here; Django builds every backend for every login, so reading them
        # lazily keeps a local login working while the provider is unreachable.
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_TOKEN_ENDPOINT"))

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_USER_ENDPOINT"))

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str | None:
        return oidc_setting("OIDC_OP_JWKS_ENDPOINT", None)  # type: ignore[no-any-return]

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return str(settings.OIDC_RP_CLIENT_ID)

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:
        return str(settings.OIDC_RP_CLIENT_SECRET)

    @property
    def OIDC_RP_SIGN_ALGO(self) -> str:
        return str(settings.OIDC_RP_SIGN_ALGO)

    @property
    def OIDC_RP_IDP_SIGN_KEY(self) -> Any:
        return getattr(settings, "OIDC_RP_IDP_SIGN_KEY", None)

    def get_payload_data(self, token: bytes | str, key: Any) -> dict[str, Any]:
        """Verify the ID token: signature with the configured algorithm only (never "none"), issuer equal to
        OIDC_OP_ISSUER, audience containing the client id, exp and iat present and exp not past (with
        OIDC_CLOCK_SKEW_SECONDS of leeway). OpenID Connect Core 1.0, section 3.1.3.7. Raises
        SuspiciousOperation naming the check that failed, never the token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation("ID token is not a JWS") from exc
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation("ID token algorithm is not OIDC_RP_SIGN_ALGO")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_OP_ISSUER,
                leeway=settings.OIDC_CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token rejected: {type(exc).__name__}") from exc
        return dict(payload)

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User | None:
        """Merge the userinfo claims (same subject, Core 1.0 section 5.3.2) and let the service decide."""
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo subject differs from the ID token's")
        outcome = sign_on_user_sync(issuer=str(payload["iss"]), claims={**userinfo, **payload})
        if outcome.refusal:
            # Already audited by the service; the callback view shows why.
            self.request.sign_on_refusal = outcome.refusal
            return None
        return outcome.user


def _refusal_page(request: HttpRequest, reason: str) -> HttpResponse:
    """The page that says why there is no session: 403 when the provider vouched for the user but Carepath
    gives them nothing, 401 when the sign-in itself failed."""
    refused = reason in ("no_role", "no_site", "deactivated", "username_taken")
    return render(
        request,
        "pathways/sign_on_refused.html",
        {
            "reason": reason,
            "explanation": REFUSAL_REASONS.get(reason, REFUSAL_REASONS["provider_error"]),
            "provider_name": settings.OIDC_PROVIDER_NAME,
        },
        status=403 if refused else 401,
    )


class SignOnStartView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    """GET /oidc/authenticate/: redirect to the provider with state, nonce and a PKCE challenge."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, **kwargs: Any) -> None:
        # Endpoints are read per request in get(): discovery needs the network, and its failure is a page.
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
            self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
            return super().get(request)  # type: ignore[no-any-return]
        except SIGN_ON_ERRORS as exc:
            sign_on_failed(reason=f"provider_error: {type(exc).__name__}")
            return _refusal_page(request, "provider_error")


class SignOnCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """GET /oidc/callback/: the provider's answer. State, nonce and PKCE verifier are checked by the library,
    the ID token by CarepathOIDCBackend; any failure is audited and shown as a page, never a 5xx."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            return super().get(request)  # type: ignore[no-any-return]
        except SIGN_ON_ERRORS as exc:
            reason = "invalid_token" if isinstance(exc, SuspiciousOperation | jwt.PyJWTError) else "provider_error"
            sign_on_failed(reason=f"{reason}: {exc}"[:200] if isinstance(exc, SuspiciousOperation) else reason)
            return _refusal_page(request, reason)

    def login_failure(self) -> HttpResponse:
        reason = getattr(self.request, "sign_on_refusal", "")
        if not reason:
            # The provider answered with an error (e.g. access_denied), or the state was unknown.
            reason = "provider_error"
            sign_on_failed(reason=reason)
        return _refusal_page(self.request, reason)


def provider_logout_url(request: HttpRequest) -> str:
    """OIDC_OP_LOGOUT_URL_METHOD: the provider's end_session_endpoint with id_token_hint and
    post_logout_redirect_uri (OpenID Connect RP-Initiated Logout 1.0) when the session came from the provider
    and it offers one; otherwise Carepath's own LOGOUT_REDIRECT_URL."""
    back = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    id_token = request.session.get("oidc_id_token")
    if not settings.OIDC_ENABLED or not id_token:
        return back
    try:
        end_session = oidc_setting("OIDC_OP_END_SESSION_ENDPOINT", "")
    except (requests.RequestException, ImproperlyConfigured):
        logger.warning("provider logout skipped: discovery failed")
        return back
    if not end_session:
        return back
    query = urlencode(
        {"id_token_hint": id_token, "post_logout_redirect_uri": back, "client_id": settings.OIDC_RP_CLIENT_ID}
    )
    return f"{end_session}?{query}"


class SignOutView(OIDCLogoutView):  # type: ignore[misc]
    """POST /accounts/logout/: audit the logoff, end the Carepath session, then the provider's (if any)."""

    get_settings = staticmethod(oidc_setting)

    def post(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if isinstance(user, User) and user.is_authenticated:
            session_end_record(user=user, reason="logout")
        return super().post(request)  # type: ignore[no-any-return]
