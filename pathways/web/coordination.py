"""The coordinators' workspace pages: the patient registry, registration, enrolment with a preview, care teams,
the assignment board, the enrollment lifecycle and the 30-day calendar.

Every view is thin: scope the object through pathways.selectors.access (out of scope → 404), check the form's
shape, call ONE service (the one the API calls), then redirect (post/redirect/get). A domain error goes back
onto the form with its own 4xx status, never a 500. Coordinators and admins only: anyone else gets 403, so an
auditor's forged POST changes nothing. Each page tells the audit middleware what patient data it showed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from pathways.choices import DiagnosisStatus, EnrollmentStatus, PathwayStage
from pathways.errors import DomainError
from pathways.middleware import audit_note
from pathways.models import Enrollment, Patient, Schedule, User
from pathways.selectors.access import (
    is_admin,
    is_coordinator,
    scope_enrollments,
    scope_patients,
    scope_sites,
    scope_tasks,
    scope_users,
)
from pathways.selectors.coordination import (
    assigned_open_work,
    assignment_board,
    care_team_candidates,
    care_team_members,
    patient_registry,
    task_assignees,
)
from pathways.selectors.enrollment_preview import enrollment_preview
from pathways.selectors.schedule import enrollment_upcoming_occurrences
from pathways.services import enrollment as enrollment_services
from pathways.services.assignment import tasks_assign_bulk
from pathways.services.enrollment import schedule_release_hold
from pathways.services.patients import patient_create, patient_update
from pathways.services.replan import ReplanOutcome
from pathways.services.tasks import task_assign
from pathways.web.coordination_forms import (
    BoardFilterForm,
    BulkAssignForm,
    CareTeamAddForm,
    EnrolForm,
    NoInputForm,
    OptionalReasonForm,
    PatientForm,
    ReasonForm,
    ReassignForm,
    ReleaseHoldForm,
    SearchForm,
)

PATHWAY = "calciphylaxis"
REGISTRY_PAGE = 25
CALENDAR_DAYS = 30
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# --- helpers ---------------------------------------------------------------------------------------------


def _coordinator(request: HttpRequest) -> User:
    """The signed-in coordinator or admin; anyone else may not open these pages (403)."""
    user = request.user
    if not isinstance(user, User) or not (is_coordinator(user) or is_admin(user)):
        raise PermissionDenied
    return user


def patient_href(patient_id: int) -> str:
    # The patient page belongs to the specialists' routes (workspace:patient); its path is fixed.
    return f"/patients/{patient_id}/"


def _posted(request: HttpRequest) -> Any:
    # A POST binds the form even when empty (resume and enrol post nothing but the CSRF token).
    return request.POST if request.method == "POST" else None


def days_label(days: list[int] | None) -> str:
    """Weekday numbers (Monday = 0) as "Mon, Wed, Fri"."""
    return ", ".join(WEEKDAYS[d] for d in sorted(days or []) if 0 <= d < len(WEEKDAYS))


def _patient(user: User, patient_id: int) -> Patient:
    patient = scope_patients(user).select_related("site").filter(pk=patient_id).first()
    if patient is None:
        raise Http404("no such patient")
    return patient


def _enrollment(user: User, enrollment_id: int) -> Enrollment:
    enrollment = scope_enrollments(user).select_related("patient__site", "template").filter(pk=enrollment_id).first()
    if enrollment is None:
        raise Http404("no such enrollment")
    return enrollment


def form_error(form: Form, exc: DomainError) -> int:
    """Put a service's refusal on the form (its message, and per field where the form has that field);
    returns the HTTP status the page is answered with (the error's own: 400, 403, 404 or 409)."""
    for name, problems in exc.fields.items():
        if name in form.fields:
            for problem in problems:
                form.add_error(name, problem)
    form.add_error(None, exc.message)
    return exc.http_status


def _audit_patient(request: HttpRequest, patient: Patient, subtype: str, **extra: Any) -> None:
    audit_note(
        request, entity_type="patient", entity_id=str(patient.pk), patient_id=patient.pk, subtype=subtype, **extra
    )


def _audit_enrollment(request: HttpRequest, enrollment: Enrollment, subtype: str, **extra: Any) -> None:
    audit_note(
        request,
        entity_type="enrollment",
        entity_id=str(enrollment.pk),
        patient_id=enrollment.patient_id,
        subtype=subtype,
        **extra,
    )


# --- the registry ----------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD"])
def patients(request: HttpRequest) -> HttpResponse:
    """The patients at my sites, searchable by MRN or name, each with its latest enrollment's status."""
    user = _coordinator(request)
    form = SearchForm(request.GET or None)
    status = 200
    q = ""
    if form.is_bound:
        if form.is_valid():
            q = form.cleaned_data["q"]
        else:
            status = 400
    page = Paginator(patient_registry(user=user, q=q), REGISTRY_PAGE).get_page(request.GET.get("page"))
    audit_note(request, entity_type="patient", entity_ids=[p.pk for p in page], subtype="workspace registry")
    context = {"form": form, "page": page, "q": q, "query": f"q={q}" if q else ""}
    template = (
        "pathways/coord/_registry_results.html" if getattr(request, "htmx", False) else "pathways/coord/registry.html"
    )
    return render(request, template, context, status=status)


# --- registration and editing ----------------------------------------------------------------------------


def _my_sites(user: User) -> QuerySet[Any]:
    return scope_sites(user).order_by("code")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def patient_register(request: HttpRequest) -> HttpResponse:
    """Register a patient at one of my sites (patient_create), then go on to the enrolment preview."""
    user = _coordinator(request)
    sites = _my_sites(user)
    form = PatientForm(_posted(request), sites=sites)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                patient = patient_create(actor=user, **form.cleaned_data)
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                _audit_patient(request, patient, "workspace patient register")
                messages.success(request, f"Registered MRN {patient.mrn}. Review what enrolment would create.")
                return HttpResponseRedirect(reverse("workspace:patient-enrol", args=[patient.pk]))
        else:
            status = 400
    audit_note(request, entity_type="patient", subtype="workspace patient register")
    return render(request, "pathways/coord/patient_form.html", {"form": form, "patient": None}, status=status)


def _initial(patient: Patient) -> dict[str, Any]:
    return {
        "mrn": patient.mrn,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "birth_date": patient.birth_date,
        "sex": patient.sex,
        "dialysis_modality": patient.dialysis_modality,
        "dialysis_days": list(patient.dialysis_days or []),
        "dialysis_session_time": patient.dialysis_session_time,
        "risk_factors": list(patient.risk_factors or []),
        "risk_medications": list(patient.risk_medications or []),
        "current_therapies": list(patient.current_therapies or []),
    }


def _replan_message(outcomes: list[ReplanOutcome]) -> str:
    """What re-planning did, in a sentence for the coordinator ("" when nothing changed)."""
    parts = []
    for outcome in outcomes:
        parts += [f"{code} started" for code in outcome.started]
        parts += [f"{code} ended" for code in outcome.ended]
        parts += [f"{code} re-planned from the next session" for code in outcome.replanned]
    if not parts:
        return ""
    cancelled = sum(len(o.tasks_cancelled) for o in outcomes)
    return f" Plan updated: {', '.join(parts)}; {cancelled} open task(s) cancelled with the reason."


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def patient_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Edit a patient (patient_update). A change to the dialysis modality, days or session time or to the risk
    medications re-plans the patient's live enrollments; the message says what changed."""
    user = _coordinator(request)
    patient = _patient(user, patient_id)
    form = PatientForm(_posted(request), initial=_initial(patient), editing=True)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                result = patient_update(patient_id=patient.pk, actor=user, changes=form.cleaned_data)
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                _audit_patient(request, patient, "workspace patient edit")
                messages.success(request, "Patient details saved." + _replan_message(result.replanned))
                return HttpResponseRedirect(patient_href(patient.pk))
        else:
            status = 400
    _audit_patient(request, patient, "workspace patient edit")
    return render(request, "pathways/coord/patient_form.html", {"form": form, "patient": patient}, status=status)


# --- enrolment with a preview -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def patient_enrol(request: HttpRequest, patient_id: int) -> HttpResponse:
    """GET: what the active pathway version would create for this patient. POST: enrol (enrollment_apply)."""
    user = _coordinator(request)
    patient = _patient(user, patient_id)
    # ?suspected=1 previews the workup a suspected case starts with (and preselects it).
    suspected = request.GET.get("suspected") == "1"
    form = EnrolForm(_posted(request), initial={"diagnosis_status": "provisional" if suspected else "confirmed"})
    status = 200
    if request.method == "POST" and form.is_valid():
        # The coordinator who enrols becomes the enrollment's coordinator (and joins its care team as such).
        coordinator = user if is_coordinator(user) and user.sites.filter(pk=patient.site_id).exists() else None
        try:
            enrollment = enrollment_services.enrollment_apply(
                patient_id=patient.pk,
                pathway_slug=PATHWAY,
                actor=user,
                coordinator=coordinator,
                diagnosis_status=form.cleaned_data["diagnosis_status"],
            )
        except DomainError as exc:
            status = form_error(form, exc)
        else:
            _audit_enrollment(request, enrollment, "workspace enrol")
            messages.success(request, "Enrolled. The day-0 tasks are in the role pools.")
            return HttpResponseRedirect(patient_href(patient.pk))
    preview = enrollment_preview(
        patient=patient, pathway_slug=PATHWAY, stage=PathwayStage.WORKUP if suspected else PathwayStage.TREATMENT
    )
    if preview is None and status == 200:
        status = 409
    _audit_patient(request, patient, "workspace enrolment preview")
    return render(
        request,
        "pathways/coord/enrol.html",
        {
            "patient": patient,
            "preview": preview,
            "form": form,
            "patient_href": patient_href(patient.pk),
            "dialysis_days_label": days_label(patient.dialysis_days),
            "suspected": suspected,
        },
        status=status,
    )


# --- care team -------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def care_team(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    """The enrollment's care team (current and past) and a form to add a member (care_team_add)."""
    user = _coordinator(request)
    enrollment = _enrollment(user, enrollment_id)
    people = care_team_candidates(user=user, enrollment=enrollment)
    form = CareTeamAddForm(_posted(request), people=people)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                enrollment_services.care_team_add(
                    enrollment_id=enrollment.pk,
                    user=form.cleaned_data["user"],
                    role=form.cleaned_data["role"],
                    actor=user,
                )
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                _audit_enrollment(request, enrollment, "workspace care team add")
                messages.success(request, "Added to the care team.")
                return HttpResponseRedirect(reverse("workspace:care-team", args=[enrollment.pk]))
        else:
            status = 400
    members = care_team_members(user=user, enrollment=enrollment)
    _audit_enrollment(request, enrollment, "workspace care team", entity_ids=[m.pk for m in members])
    return render(
        request,
        "pathways/coord/care_team.html",
        {
            "enrollment": enrollment,
            "patient": enrollment.patient,
            "members": members,
            "form": form,
            "live": enrollment.status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD),
            "patient_href": patient_href(enrollment.patient_id),
        },
        status=status,
    )


@login_required
@require_POST
def care_team_end(request: HttpRequest, enrollment_id: int, member_id: int) -> HttpResponse:
    """End one membership of the enrollment's care team (care_team_end)."""
    user = _coordinator(request)
    enrollment = _enrollment(user, enrollment_id)
    member = enrollment.care_team.filter(pk=member_id).first()
    if member is None:
        raise Http404("not a member of this care team")
    _audit_enrollment(request, enrollment, "workspace care team end", entity_ids=[member.pk])
    try:
        enrollment_services.care_team_end(membership_id=member.pk, actor=user)
    except DomainError as exc:
        return _error_page(request, enrollment, exc)
    messages.success(request, "Membership ended.")
    return HttpResponseRedirect(reverse("workspace:care-team", args=[enrollment.pk]))


def _error_page(request: HttpRequest, enrollment: Enrollment, exc: DomainError) -> HttpResponse:
    return render(
        request,
        "pathways/coord/refused.html",
        {"enrollment": enrollment, "message": exc.message, "patient_href": patient_href(enrollment.patient_id)},
        status=exc.http_status,
    )


# --- the assignment board --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def board(request: HttpRequest) -> HttpResponse:
    """Unassigned open work at my sites by role; POST assigns the checked tasks to one person, all or nothing
    (tasks_assign_bulk)."""
    user = _coordinator(request)
    filters = BoardFilterForm(request.GET or None)
    patient_id = filters.cleaned_data["patient"] if filters.is_bound and filters.is_valid() else None
    status = 200 if not filters.is_bound or filters.is_valid() else 400
    form = BulkAssignForm(_posted(request), people=scope_users(user))
    if request.method == "POST":
        if form.is_valid() and (status := _tasks_in_scope(user, form)) == 200:
            try:
                assigned = tasks_assign_bulk(
                    versions=form.cleaned_data["tasks"],
                    assignee=form.cleaned_data["assignee"],
                    actor=user,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                audit_note(
                    request, entity_type="task", entity_ids=[t.pk for t in assigned], subtype="workspace bulk assign"
                )
                person = form.cleaned_data["assignee"]
                messages.success(
                    request, f"Assigned {len(assigned)} task(s) to {person.get_full_name() or person.username}."
                )
                return HttpResponseRedirect(request.get_full_path())
        elif status == 200:
            status = 400
    columns = assignment_board(user=user, patient_id=patient_id)
    assigned_rows, assigned_total = assigned_open_work(user=user)
    shown = [t.pk for c in columns for t in c.tasks] + [t.pk for t in assigned_rows]
    audit_note(request, entity_type="task", entity_ids=shown, subtype="workspace assignment board")
    return render(
        request,
        "pathways/coord/board.html",
        {
            "columns": columns,
            "form": form,
            "filters": filters,
            "assigned": assigned_rows,
            "assigned_total": assigned_total,
            "now": timezone.now(),
        },
        status=status,
    )


def _tasks_in_scope(user: User, form: BulkAssignForm) -> int:
    """404 (with a form error) when a checked task is not one the user may see, as the API would answer."""
    wanted = set(form.cleaned_data["tasks"])
    visible = set(scope_tasks(user).filter(pk__in=wanted).values_list("pk", flat=True))
    unknown = sorted(wanted - visible)
    if unknown:
        form.add_error("tasks", f"task {unknown[0]} is not on this board")
        return 404
    return 200


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def task_reassign(request: HttpRequest, task_id: int) -> HttpResponse:
    """Give an open task to someone else on its care team, with a reason (task_assign, as the API's assign)."""
    user = _coordinator(request)
    task = scope_tasks(user).select_related("enrollment__patient__site", "assignee").filter(pk=task_id).first()
    if task is None:
        raise Http404("no such task")
    form = ReassignForm(
        request.POST or None, initial={"version": task.version}, people=task_assignees(user=user, task=task)
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                task_assign(
                    task_id=task.pk,
                    assignee=form.cleaned_data["assignee"],
                    actor=user,
                    expected_version=form.cleaned_data["version"],
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                audit_note(request, entity_type="task", entity_id=str(task.pk), patient_id=task.enrollment.patient_id)
                messages.success(request, f"Task {task.pk} reassigned.")
                return HttpResponseRedirect(reverse("workspace:assignment-board"))
        else:
            status = 400
    audit_note(
        request,
        entity_type="task",
        entity_id=str(task.pk),
        patient_id=task.enrollment.patient_id,
        subtype="workspace reassign",
    )
    return render(request, "pathways/coord/reassign.html", {"task": task, "form": form}, status=status)


# --- the enrollment lifecycle ----------------------------------------------------------------------------

LIFECYCLE: dict[str, tuple[type[Form], str]] = {
    "hold": (ReasonForm, "Put the enrollment on hold"),
    "resume": (NoInputForm, "Resume the enrollment"),
    "complete": (OptionalReasonForm, "Complete the enrollment"),
    "revoke": (ReasonForm, "Revoke the enrollment"),
    "confirm": (OptionalReasonForm, "Confirm the diagnosis: start treatment"),
    "rule-out": (ReasonForm, "Rule out calciphylaxis: complete the enrollment"),
}
LIFECYCLE_DONE = {
    "hold": "Enrollment put on hold.",
    "resume": "Enrollment resumed.",
    "complete": "Enrollment completed.",
    "revoke": "Enrollment revoked.",
    "confirm": "Diagnosis confirmed: the treatment work has started.",
    "rule-out": "Calciphylaxis ruled out: the enrollment is completed and its open workup cancelled.",
}


def _lifecycle_call(action: str, enrollment: Enrollment, user: User, data: dict[str, Any]) -> None:
    # Exactly the services and arguments of pathways/api/views.py EnrollmentViewSet.
    if action == "hold":
        enrollment_services.enrollment_hold(enrollment_id=enrollment.pk, actor=user, reason=data["reason"])
    elif action == "resume":
        enrollment_services.enrollment_resume(enrollment_id=enrollment.pk, actor=user)
    elif action == "complete":
        enrollment_services.enrollment_complete(enrollment_id=enrollment.pk, actor=user, reason=data["reason"])
    elif action in ("confirm", "rule-out"):
        enrollment_services.enrollment_diagnosis_record(
            enrollment_id=enrollment.pk,
            diagnosis_status=DiagnosisStatus.CONFIRMED if action == "confirm" else DiagnosisStatus.REFUTED,
            actor=user,
            reason=data["reason"],
        )
    else:
        enrollment_services.enrollment_revoke(enrollment_id=enrollment.pk, actor=user, reason=data["reason"])


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def enrollment_action(request: HttpRequest, enrollment_id: int, action: str) -> HttpResponse:
    """Hold (reason), resume, complete (optional reason) or revoke (reason) an enrollment; GET shows the form."""
    user = _coordinator(request)
    enrollment = _enrollment(user, enrollment_id)
    form_class, title = LIFECYCLE[action]
    form = form_class(_posted(request))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _lifecycle_call(action, enrollment, user, form.cleaned_data)
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                _audit_enrollment(request, enrollment, f"workspace enrollment {action}")
                messages.success(request, LIFECYCLE_DONE[action])
                return HttpResponseRedirect(patient_href(enrollment.patient_id))
        else:
            status = 400
    _audit_enrollment(request, enrollment, f"workspace enrollment {action}")
    return render(
        request,
        "pathways/coord/lifecycle.html",
        {
            "enrollment": enrollment,
            "patient": enrollment.patient,
            "form": form,
            "title": title,
            "action": action,
            "patient_href": patient_href(enrollment.patient_id),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def release_hold(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    """Release a schedule a safety rule held (schedule_release_hold); GET lists the held schedules."""
    user = _coordinator(request)
    enrollment = _enrollment(user, enrollment_id)
    held = list(
        Schedule.objects.filter(enrollment=enrollment)
        .exclude(pause_reason="")
        .select_related("task_template")
        .order_by("task_template__position")
    )
    choices = [(s.task_template.code, f"{s.task_template.title} — {s.pause_reason}") for s in held]
    form = ReleaseHoldForm(_posted(request), held=choices)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            schedule = next(s for s in held if s.task_template.code == form.cleaned_data["template"])
            try:
                schedule_release_hold(schedule_id=schedule.pk, actor=user, reason=form.cleaned_data["reason"])
            except DomainError as exc:
                status = form_error(form, exc)
            else:
                _audit_enrollment(request, enrollment, "workspace release hold")
                messages.success(request, "Safety hold released; the schedule continues from now.")
                return HttpResponseRedirect(patient_href(enrollment.patient_id))
        else:
            status = 400
    _audit_enrollment(request, enrollment, "workspace release hold")
    return render(
        request,
        "pathways/coord/release_hold.html",
        {
            "enrollment": enrollment,
            "patient": enrollment.patient,
            "form": form,
            "held": held,
            "patient_href": patient_href(enrollment.patient_id),
        },
        status=status,
    )


# --- the 30-day calendar ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD"])
def enrollment_calendar(request: HttpRequest, enrollment_id: int) -> HttpResponse:
    """The next 30 days of the enrollment's work as a weeks-by-days grid, in the site's local time."""
    user = _coordinator(request)
    enrollment = _enrollment(user, enrollment_id)
    now = timezone.now()
    items = enrollment_upcoming_occurrences(enrollment=enrollment, days=CALENDAR_DAYS, now=now)
    tz = enrollment.patient.site.tzinfo
    today = now.astimezone(tz).date()
    last = (now + dt.timedelta(days=CALENDAR_DAYS)).astimezone(tz).date()
    by_day: dict[dt.date, list[Any]] = {}
    for item in items:
        by_day.setdefault(item.available_at.astimezone(tz).date(), []).append(item)
    first_monday = today - dt.timedelta(days=today.weekday())
    weeks = []
    day = first_monday
    while day <= last:
        weeks.append(
            [
                {
                    "date": day + dt.timedelta(days=n),
                    "items": by_day.get(day + dt.timedelta(days=n), []),
                    "in_window": today <= day + dt.timedelta(days=n) <= last,
                    "today": day + dt.timedelta(days=n) == today,
                }
                for n in range(7)
            ]
        )
        day += dt.timedelta(days=7)
    _audit_enrollment(request, enrollment, "workspace calendar")
    return render(
        request,
        "pathways/coord/calendar.html",
        {
            "enrollment": enrollment,
            "patient": enrollment.patient,
            "weeks": weeks,
            "count": len(items),
            "days": CALENDAR_DAYS,
            "tzname": enrollment.patient.site.timezone,
            "patient_href": patient_href(enrollment.patient_id),
        },
    )
