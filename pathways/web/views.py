"""Dashboard views: thin, login required, scoped exactly like the API (pathways.selectors.access), and each
one tells the audit middleware what patient data it showed (audit_note)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from pathways.api.reports import adherence_report_data
from pathways.choices import AuditAction, Prong, Role
from pathways.errors import InvalidInput
from pathways.middleware import audit_note
from pathways.models import User
from pathways.selectors.access import (
    can_view_audit_log,
    can_view_reports,
    scope_audit_events,
    scope_patients,
)
from pathways.selectors.adherence import adherence_weekly, adherence_window, overdue_tasks, weekly_rates
from pathways.web.charts import bar_chart, line_chart
from pathways.web.forms import AuditFilterForm, LockoutAuthenticationForm, WindowForm

OVERDUE_LIMIT = 200
AUDIT_PAGE = 50
PRONG_LABELS = dict(Prong.choices)
ROLE_LABELS = dict(Role.choices)


class DashboardLoginView(LoginView):
    """The login page: "Sign in with <provider>" when sign-on is configured, the password form unless local
    login is switched off (LOCAL_LOGIN_ENABLED), and why the last session ended (?expired=idle|absolute)."""

    template_name = "pathways/login.html"
    authentication_form = LockoutAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_LOGIN_ENABLED:
            raise PermissionDenied
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        expired = self.request.GET.get("expired", "")
        context.update(
            oidc_enabled=settings.OIDC_ENABLED,
            provider_name=settings.OIDC_PROVIDER_NAME,
            local_login_enabled=settings.LOCAL_LOGIN_ENABLED,
            expired=expired if expired in ("idle", "absolute") else "",
            idle_minutes=int(settings.SESSION_IDLE_TIMEOUT.total_seconds() // 60),
        )
        return context


def _staff(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def _day(value: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC) if value else None


def _series(rows: list[dict[str, Any]]) -> tuple[dict[str, list[tuple[str, float | None]]], list[str]]:
    weeks = sorted({row["week"] for row in rows})
    series: dict[str, list[tuple[str, float | None]]] = {}
    for row in rows:
        series.setdefault(row["group"], []).append((row["week"], row["on_time_rate"]))
    return series, weeks


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """Adherence by prong and by role (tables with the API's numbers, bar charts) and weekly trends."""
    user = _staff(request)
    if not can_view_reports(user):
        raise PermissionDenied
    form = WindowForm(request.GET or None)
    start = end = None
    if form.is_bound and form.is_valid():
        start, end = _day(form.cleaned_data["start"]), _day(form.cleaned_data["end"])
    try:
        by_prong = adherence_report_data(user=user, group_by="prong", start=start, end=end)
        by_role = adherence_report_data(user=user, group_by="role", start=start, end=end)
        window = adherence_window(start=start, end=end)
    except InvalidInput as exc:
        form.add_error(None, exc.message)
        by_prong = adherence_report_data(user=user, group_by="prong", start=None, end=None)
        by_role = adherence_report_data(user=user, group_by="role", start=None, end=None)
        window = adherence_window()
    weekly = adherence_weekly(user=user, window=window)
    prong_series, prong_weeks = _series(weekly_rates(weekly, by="prong"))
    role_series, role_weeks = _series(weekly_rates(weekly, by="role"))
    audit_note(request, entity_type="adherence", action=AuditAction.EXECUTE, subtype="dashboard overview")
    return render(
        request,
        "pathways/dashboard/overview.html",
        {
            "form": form,
            "report": by_prong,
            "by_prong": by_prong["results"],
            "by_role": by_role["results"],
            "totals": by_prong["totals"],
            # Encoded: the ISO times carry "+00:00", which a raw query string would turn into a space.
            "api_query": urlencode({"start": by_prong["start"], "end": by_prong["end"]}),
            "prong_chart": bar_chart(
                [(row["group"], row["on_time_rate"]) for row in by_prong["results"]],
                title="On-time completion by prong",
                chart_id="chart-prong",
            ),
            "role_chart": bar_chart(
                [(row["group"], row["on_time_rate"]) for row in by_role["results"]],
                title="On-time completion by role",
                chart_id="chart-role",
            ),
            "prong_trend": line_chart(
                prong_series, prong_weeks, title="Weekly on-time completion by prong", chart_id="trend-prong"
            ),
            "role_trend": line_chart(
                role_series, role_weeks, title="Weekly on-time completion by role", chart_id="trend-role"
            ),
        },
    )


@login_required
def overdue(request: HttpRequest) -> HttpResponse:
    """Open tasks past due, oldest first (the first OVERDUE_LIMIT)."""
    user = _staff(request)
    if not can_view_reports(user):
        raise PermissionDenied
    now = timezone.now()
    tasks = list(overdue_tasks(user=user, now=now)[:OVERDUE_LIMIT])
    rows = [{"task": t, "age_hours": round((now - t.due_at).total_seconds() / 3600, 1)} for t in tasks]
    audit_note(request, entity_type="task", entity_ids=[t.pk for t in tasks], subtype="dashboard overdue")
    return render(
        request,
        "pathways/dashboard/overdue.html",
        {"rows": rows, "limit": OVERDUE_LIMIT, "total": overdue_tasks(user=user, now=now).count()},
    )


@login_required
def patients(request: HttpRequest) -> HttpResponse:
    """The patients the user may see (MRN and site), each linking to its board."""
    user = _staff(request)
    mrn = request.GET.get("mrn", "").strip()[:64]
    qs = scope_patients(user).select_related("site").order_by("site__code", "mrn")
    if mrn:
        qs = qs.filter(mrn__icontains=mrn)
    page = Paginator(qs, AUDIT_PAGE).get_page(request.GET.get("page"))
    audit_note(request, entity_type="patient", entity_ids=[p.pk for p in page], subtype="dashboard patients")
    return render(request, "pathways/dashboard/patients.html", {"page": page, "mrn": mrn})


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """Browse the audit trail (auditors and admins), newest first, with the API's filters."""
    user = _staff(request)
    if not can_view_audit_log(user):
        raise PermissionDenied
    form = AuditFilterForm(request.GET or None)
    qs = scope_audit_events(user).select_related("actor").order_by("-recorded_at", "-pk")
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        for name, lookup in (
            ("actor", "actor_id"),
            ("patient", "patient_id"),
            ("entity_type", "entity_type"),
            ("action", "action"),
            ("outcome", "outcome"),
        ):
            if data[name] not in (None, ""):
                qs = qs.filter(**{lookup: data[name]})
        if data["since"]:
            qs = qs.filter(recorded_at__gte=data["since"])
        if data["until"]:
            qs = qs.filter(recorded_at__lt=data["until"])
    page = Paginator(qs, AUDIT_PAGE).get_page(request.GET.get("page"))
    audit_note(request, entity_type="auditevent", entity_ids=[e.pk for e in page], subtype="dashboard audit log")
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "pathways/dashboard/audit.html", {"form": form, "page": page, "query": query.urlencode()})
