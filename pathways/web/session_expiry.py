"""Automatic logoff (HIPAA 164.312(a)(2)(iii)): idle and absolute session limits, checked on every request.

Two stamps live in the session: when it was signed in (`carepath_signed_in_at`) and when it last made a
request (`carepath_seen_at`), both as POSIX seconds from timezone.now() (so time-machine can travel them). A
session idle for longer than SESSION_IDLE_TIMEOUT, or older than SESSION_ABSOLUTE_LIFETIME, is logged out and
audited ("session.expired", outcome_desc "idle" or "absolute"); the next page is the login page with the
reason. The page itself warns SESSION_IDLE_WARNING before the idle logoff (static/pathways/session-expiry.js)
and can stay signed in by calling the keep-alive view, which is an ordinary request.

Own middleware rather than django-session-timeout: that package (last release 2020) has an idle limit only,
no absolute lifetime, no audit hook and no way to warn the page.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from pathways.models import User
from pathways.services.sign_on import session_end_record

SIGNED_IN_AT = "carepath_signed_in_at"
SEEN_AT = "carepath_seen_at"
# Requests that neither count as activity nor are stopped: static files and the health check.
_EXEMPT_PREFIXES = ("/static/", "/healthz", "/favicon.ico")
# The last-seen stamp is rewritten at most this often (or a tenth of the idle timeout, if shorter), so that a
# burst of requests is not a burst of session writes; the idle logoff can therefore come this much early.
SEEN_AT_RESOLUTION_SECONDS = 30


def _expiry_reason(request: HttpRequest, now: float) -> str:
    session = request.session
    signed_in_at = session.get(SIGNED_IN_AT)
    seen_at = session.get(SEEN_AT)
    if signed_in_at is None or seen_at is None:
        return ""
    if now - float(signed_in_at) > settings.SESSION_ABSOLUTE_LIFETIME.total_seconds():
        return "absolute"
    if now - float(seen_at) > settings.SESSION_IDLE_TIMEOUT.total_seconds():
        return "idle"
    return ""


class SessionExpiryMiddleware:
    """After AuthenticationMiddleware and the audit middleware: ends expired sessions, stamps live ones."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not isinstance(user, User) or not user.is_authenticated or request.path.startswith(_EXEMPT_PREFIXES):
            return self.get_response(request)
        now = timezone.now().timestamp()
        reason = _expiry_reason(request, now)
        if reason:
            session_end_record(user=user, reason=reason)
            logout(request)
            login_url = f"{settings.LOGIN_URL}?{urlencode({'expired': reason, 'next': request.get_full_path()})}"
            if request.headers.get("HX-Request"):
                # htmx would swap the login page into a fragment: ask it to load the page instead.
                return HttpResponse(status=204, headers={"HX-Redirect": login_url})
            if request.path.startswith(("/api/", "/fhir/")):
                return JsonResponse(
                    {"error": {"code": "session_expired", "message": f"session expired ({reason})", "fields": {}}},
                    status=401,
                )
            return HttpResponseRedirect(login_url)
        request.session.setdefault(SIGNED_IN_AT, now)
        seen_at = request.session.get(SEEN_AT)
        resolution = min(SEEN_AT_RESOLUTION_SECONDS, settings.SESSION_IDLE_TIMEOUT.total_seconds() / 10)
        if seen_at is None or now - float(seen_at) >= resolution:
            request.session[SEEN_AT] = now
        return self.get_response(request)


@require_POST
def session_keepalive(request: HttpRequest) -> HttpResponse:
    """POST /accounts/session/keepalive/: "Stay signed in". The middleware has already stamped the request as
    activity; answers {"idle_seconds": N} (the idle limit, in seconds) or 401 when signed out."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": {"code": "not_authenticated", "message": "signed out", "fields": {}}}, status=401)
    return JsonResponse({"idle_seconds": int(settings.SESSION_IDLE_TIMEOUT.total_seconds())})
