"""The workspace's navigation and each role's start page, decided from pathways.selectors.access.

NAV is the one table of header links: a link is shown only when its predicate allows the user and its URL
name reverses (so coordinator pages defined in coordinator_urls appear as soon as they exist). The context
processor puts the links, the start page and the unread-notification count in every template."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from pathways.models import User
from pathways.selectors.access import (
    can_view_audit_log,
    can_view_reports,
    is_admin,
    is_auditor,
    is_coordinator,
    specialist_roles,
)
from pathways.selectors.workspace import unread_notification_count


def _works_tasks(user: User) -> bool:
    return is_admin(user) or bool(specialist_roles(user))


def _manages(user: User) -> bool:
    return is_admin(user) or is_coordinator(user)


def _anyone(user: User) -> bool:
    return True


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    allowed: Callable[[User], bool]
    element_id: str


NAV: tuple[NavEntry, ...] = (
    NavEntry("My work", "workspace:my-work", _works_tasks, "nav-my-work"),
    NavEntry("Patients", "workspace:patients", _manages, "nav-patients"),
    NavEntry("Assignment board", "workspace:assignment-board", _manages, "nav-assignment-board"),
    NavEntry("Adherence", "dashboard:overview", can_view_reports, "nav-overview"),
    NavEntry("Overdue", "dashboard:overdue", can_view_reports, "nav-overdue"),
    NavEntry("Audit log", "dashboard:audit", can_view_audit_log, "nav-audit"),
    NavEntry("Notifications", "workspace:notifications", _anyone, "nav-notifications"),
)


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def nav_links(user: User) -> list[dict[str, str]]:
    """The header links the user may open: [{"label", "url", "id"}], in NAV order."""
    links = []
    for entry in NAV:
        if not entry.allowed(user):
            continue
        url = _url(entry.url_name)
        if url is not None:
            links.append({"label": entry.label, "url": url, "id": entry.element_id})
    return links


def start_url(user: User) -> str:
    """Where the user starts: an admin or a specialist on My work, a coordinator on Patients (the adherence
    overview until that page exists), an auditor on Adherence; anyone else on My work."""
    if is_admin(user):
        return reverse("workspace:my-work")
    if is_coordinator(user):
        return _url("workspace:patients") or reverse("dashboard:overview")
    if specialist_roles(user):
        return reverse("workspace:my-work")
    if is_auditor(user):
        return reverse("dashboard:overview")
    return reverse("workspace:my-work")


def workspace_context(request: HttpRequest) -> dict[str, Any]:
    """Template context for the layout: `nav` (links), `start_url`, `unread_count` (computed only if a
    template shows it: one COUNT query). Empty for anonymous users."""
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {}
    return {
        "nav": SimpleLazyObject(lambda: nav_links(user)),
        "start_url": SimpleLazyObject(lambda: start_url(user)),
        "unread_count": SimpleLazyObject(lambda: unread_notification_count(user=user)),
        # The automatic logoff's limits, for the in-page warning (pathways/web/session_expiry.py).
        "session_expiry": {
            "idle_seconds": int(settings.SESSION_IDLE_TIMEOUT.total_seconds()),
            "warning_seconds": int(settings.SESSION_IDLE_WARNING.total_seconds()),
        },
    }
