"""The coordinators' version-migration pages: what a new version of the pathway changes (the diff), what moving
patients over would do (the plan), and the move itself, for one enrollment or for all at the coordinator's
sites, in chunks (docs/workspace-coordinators.md, "Moving patients to a new pathway version").

Thin views, as in coordination.py: scope through pathways.selectors.access (out of scope → 404), read through
selectors/migration.py, write through ONE service (services/migration.py, the API's), post/redirect/get.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from pathways.choices import EnrollmentStatus, TemplateStatus
from pathways.domain.recurrence import RecurrenceSpec
from pathways.errors import DomainError
from pathways.models import PathwayTemplate
from pathways.selectors.migration import (
    enrollment_migration_preview_to,
    enrollments_for_migration,
    enrollments_migration_previews,
    pathway_version_diff,
)
from pathways.services.migration import enrollment_migrate, enrollments_migrate
from pathways.web.coordination import (
    PATHWAY,
    _audit_enrollment,
    _coordinator,
    _enrollment,
    _posted,
    form_error,
    patient_href,
)

# Moved per press of the button on the pathway page; the page says how many remain.
CHUNK = 100
# Plans shown in full on the pathway page (the rest are counted).
PLANS_SHOWN = 20


class MigrateForm(forms.Form):
    to_version = forms.IntegerField(min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)


def _active() -> PathwayTemplate | None:
    return PathwayTemplate.objects.filter(slug=PATHWAY, status=TemplateStatus.ACTIVE).first()


def _readable(name: str, value: Any) -> str:
    """A diff value as a coordinator reads it: timing in words ("every 7 days", "48 h after each completion"),
    other structured values as compact JSON, text as it is."""
    if name == "recurrence" and isinstance(value, dict) and value.get("kind"):
        try:
            return RecurrenceSpec.from_fields(kind=value["kind"], first_due={}, recurrence=value).describe()
        except (KeyError, TypeError, ValueError):
            pass  # fall through to the JSON form rather than fail the page
    if name == "first_due" and isinstance(value, dict) and "day" in value:
        return f"day {value['day']}" + (f" at {value['at']}" if value.get("at") else "")
    if value is None:
        return "none"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def readable_diff(diff: dict[str, Any]) -> dict[str, Any]:
    """PathwayDiff.as_dict() with each changed field's old and new value in words (_readable)."""
    for section in ("task_templates", "rules"):
        for change in diff.get(section, {}).get("changed", []):
            change["fields"] = {
                name: {"old": _readable(name, v.get("old")), "new": _readable(name, v.get("new"))}
                for name, v in change.get("fields", {}).items()
            }
    return diff


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def enrollment_migration(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    """GET: the diff between this enrollment's version and the active one, and the plan. POST: move it."""
    user = _coordinator(request)
    enrollment = _enrollment(user, enrollment_id)
    active = _active()
    to_version = active.version if active else enrollment.template.version
    form = MigrateForm(_posted(request), initial={"to_version": to_version})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                enrollment_migrate(
                    enrollment_id=enrollment.pk,
                    to_version=form.cleaned_data["to_version"],
                    actor=user,
                    # The coordinator chose this one enrollment, its status in view.
                    include_on_hold=enrollment.status == EnrollmentStatus.ON_HOLD,
                )
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                _audit_enrollment(request, enrollment, "workspace version migration")
                messages.success(request, f"Moved to version {form.cleaned_data['to_version']}.")
                return HttpResponseRedirect(patient_href(enrollment.patient_id))
        else:
            status = 400
    plan = enrollment_migration_preview_to(enrollment=enrollment, to_version=to_version, now=timezone.now())
    diff = (
        pathway_version_diff(pathway=active, from_version=enrollment.template.version)
        if plan.is_move and active is not None
        else None
    )
    _audit_enrollment(request, enrollment, "workspace version migration")
    return render(
        request,
        "pathways/coord/migration_enrollment.html",
        {
            "enrollment": enrollment,
            "patient": enrollment.patient,
            "form": form,
            "plan": plan.as_dict(),
            "diff": readable_diff(diff.as_dict()) if diff else None,
            "patient_href": patient_href(enrollment.patient_id),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def pathway_migration(request: HttpRequest) -> HttpResponse:
    """GET: the active version's diff against the one before, and the plans for the active enrollments at my
    sites not yet on it. POST: move the next CHUNK of them (on-hold and ended ones are left, and counted)."""
    user = _coordinator(request)
    active = _active()
    form = MigrateForm(_posted(request), initial={"to_version": active.version if active else 1})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                run = enrollments_migrate(
                    slug=PATHWAY, to_version=form.cleaned_data["to_version"], actor=user, limit=CHUNK
                )
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                messages.success(
                    request,
                    f"Moved {run.migrated} enrollments to version {form.cleaned_data['to_version']}; "
                    f"{run.remaining} still to move; {len(run.failed)} failed.",
                )
                return HttpResponseRedirect(reverse("workspace:pathway-migration"))
        else:
            status = 400
    context: dict[str, Any] = {"form": form, "active": active, "diff": None, "plans": [], "selection": None}
    if active is not None:
        context["diff"] = readable_diff(pathway_version_diff(pathway=active).as_dict())
        selection = enrollments_for_migration(user=user, slug=PATHWAY, to_version=active.version)
        plans = enrollments_migration_previews(
            ids=selection.ids[:PLANS_SHOWN], to_version=active.version, now=timezone.now()
        )
        context.update(selection=selection, plans=[p.as_dict() for p in plans], chunk=CHUNK)
    return render(request, "pathways/coord/migration_pathway.html", context, status=status)
