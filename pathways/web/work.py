"""Workspace views for everyone on a care team: the landing page, My work, task actions, completing a task with
values, and the notifications inbox (docs/workspace.md).

Views are thin: reads come from pathways.selectors.workspace, each write calls the one service the API calls
for it, and each page tells the audit middleware what patient data it showed (audit_note). A task action works
as a plain form post (Post/Redirect/Get) and as an htmx post (the answer is the task's row or card only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from pathways.choices import AuditAction, Prong, Role, RuleOutcome, TaskStatus
from pathways.domain.applicability import precautions_for_role
from pathways.errors import Conflict, DomainError, InvalidInput, NotFound, NotPermitted
from pathways.middleware import audit_note
from pathways.models import Task, TaskEvent, User
from pathways.selectors.access import is_read_only, task_actions_allowed
from pathways.selectors.kept import kept_values, process_cache, user_key
from pathways.selectors.templates import precautions_by_version
from pathways.selectors.workspace import (
    my_work as my_work_tasks,
)
from pathways.selectors.workspace import (
    notifications_for,
    task_for_action,
    task_latest_change,
    tasks_for_action,
    user_timezone_name,
    work_rows,
)
from pathways.services import tasks as task_services
from pathways.services.notifications import notification_mark_read, notifications_mark_all_read
from pathways.services.observations import ObservationInput, task_complete_with_values
from pathways.services.photos import PHOTO_TASK_STATUSES, PHOTO_TEMPLATES
from pathways.web.nav import start_url
from pathways.web.reversing import reverse_kept
from pathways.web.work_forms import (
    ACTIONS,
    OUTCOME_ACTIONS,
    REASON_ACTIONS,
    VALUES_FOR_TEMPLATE,
    CompleteWithValuesForm,
    MyWorkFilterForm,
    TaskActionForm,
)

PAGE_SIZE = 50
S = TaskStatus
STATUS_LABELS = dict(TaskStatus.choices)
ROLE_LABELS = dict(Role.choices)
PRONG_LABELS = dict(Prong.choices)
ACTION_LABELS = {
    "claim": "Claim",
    "unclaim": "Unclaim",
    "accept": "Accept",
    "start": "Start",
    "complete": "Complete",
    "hold": "Hold",
    "resume": "Resume",
    "cancel": "Cancel",
    "fail": "Fail",
}
DONE_MESSAGES = {
    "claim": "Claimed",
    "unclaim": "Returned to the pool",
    "accept": "Accepted",
    "start": "Started",
    "complete": "Completed",
    "hold": "Put on hold",
    "resume": "Resumed",
    "cancel": "Cancelled",
    "fail": "Marked failed",
}


def staff_user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


# --- presentation helpers (shared with the patient page) ----------------------------------------------


def local_time(value: dt.datetime, zone: str) -> str:
    """`value` in the IANA zone `zone`, with the zone's abbreviation: "2026-03-02 07:00 CST"."""
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def relative(due: dt.datetime, now: dt.datetime) -> str:
    """ "overdue 2 d", "due in 3 h", "due in 20 min": whole units, days from 48 h on."""
    seconds = (due - now).total_seconds()
    span = abs(seconds)
    if span < 3600:
        amount = f"{max(int(span // 60), 1)} min"
    elif span < 48 * 3600:
        amount = f"{int(span // 3600)} h"
    else:
        amount = f"{int(span // 86400)} d"
    return f"overdue {amount}" if seconds < 0 else f"due in {amount}"


def _candidates(task: Task) -> list[str]:
    """The actions the task's status allows (task_services.TRANSITIONS), before permission."""
    status = task.status
    if status not in task_services.TRANSITIONS or not task_services.TRANSITIONS[status] - {S.ENTERED_IN_ERROR}:
        return []
    if status == S.ON_HOLD:
        return ["resume", "cancel", "fail"]
    moves = task_services.TRANSITIONS[status]
    found = []
    if status == S.REQUESTED and task.assignee_id is None:
        found.append("claim")
    if status in (S.REQUESTED, S.ACCEPTED) and task.assignee_id is not None:
        found.append("unclaim")
    for action, target in (
        ("accept", S.ACCEPTED),
        ("start", S.IN_PROGRESS),
        ("complete", S.COMPLETED),
        ("hold", S.ON_HOLD),
        ("cancel", S.CANCELLED),
        ("fail", S.FAILED),
    ):
        if target in moves and not (action == "accept" and task.assignee_id is None):
            found.append(action)
    return found


def action_url(task_id: int, action: str) -> str:
    """The URL a task action's form posts to (workspace:task-action)."""
    return reverse_kept("workspace:task-action", task_id, action)


def task_rows(user: User, tasks: Iterable[Task], now: dt.datetime) -> list[dict[str, Any]]:
    """What a row or card shows for each task: local due time, relative phrase, the actions the user may take
    (status allows it and can_act_on_task's rule permits it; one batch lookup for the whole page)."""
    tasks = list(tasks)
    allowed = task_actions_allowed(user, tasks, ACTIONS) if tasks else {}
    # The pinned versions' standing precautions, one query for the page (shown on the tasks of the named roles).
    precautions = precautions_by_version({task.enrollment.template_id for task in tasks})
    rows = []
    for task in tasks:
        patient = task.enrollment.patient
        zone = patient.site.timezone
        is_open = task.status in (S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD)
        actions = [a for a in _candidates(task) if a in allowed.get(task.pk, frozenset())]
        template_code = task.template.code if task.template_id and task.template else ""
        rows.append(
            {
                "task": task,
                "patient": patient,
                "due_local": local_time(task.due_at, zone),
                "relative": relative(task.due_at, now) if is_open else "",
                "overdue": is_open and task.due_at < now,
                "status_label": STATUS_LABELS.get(task.status, task.status),
                "prong_label": PRONG_LABELS.get(task.prong, task.prong),
                "role_label": ROLE_LABELS.get(task.role, task.role),
                # (action, label, form URL) and (action, label, input field, form URL): each URL reversed once
                # here rather than twice per form in the template (action= and hx-post=).
                "simple_actions": [
                    (a, ACTION_LABELS[a], action_url(task.pk, a))
                    for a in actions
                    if a not in REASON_ACTIONS | OUTCOME_ACTIONS
                ],
                "input_actions": [
                    (a, ACTION_LABELS[a], "outcome" if a in OUTCOME_ACTIONS else "reason", action_url(task.pk, a))
                    for a in actions
                    if a in REASON_ACTIONS | OUTCOME_ACTIONS
                ],
                "values_url": (
                    reverse_kept("workspace:task-complete-values", task.pk)
                    if "complete" in actions and template_code in VALUES_FOR_TEMPLATE
                    else ""
                ),
                "completed_local": local_time(task.completed_at, zone) if task.completed_at else "",
                "precautions": precautions_for_role(precautions.get(task.enrollment.template_id), task.role),
                # Wound assessments take photographs from whoever may complete them (claim first, or theirs).
                "photos_url": (
                    reverse_kept("workspace:task-photos", task.pk)
                    if template_code in PHOTO_TEMPLATES
                    and task.status in PHOTO_TASK_STATUSES
                    and (
                        {"claim", "complete"} & set(actions)
                        or (task.status == S.COMPLETED and task.assignee_id == user.pk)
                    )
                    else ""
                ),
            }
        )
    return rows


def change_notice(task: Task, event: TaskEvent | None) -> str:
    """ "Changed by <user> at <local time>: now <status>, assigned to <x>", from the task's latest event."""
    zone = task.enrollment.patient.site.timezone
    who = (event.actor.get_full_name() or event.actor.username) if event and event.actor else "the system"
    when = local_time(event.at, zone) if event else local_time(task.updated_at, zone)
    if task.assignee_id and task.assignee is not None:
        holder = task.assignee.get_full_name() or task.assignee.username
    else:
        holder = f"nobody (the {ROLE_LABELS.get(task.role, task.role)} pool)"
    return f"Changed by {who} at {when}: now {STATUS_LABELS.get(task.status, task.status)}, assigned to {holder}."


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


# --- pages ---------------------------------------------------------------------------------------------


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """/: each role's start page (pathways.web.nav.start_url)."""
    return redirect(start_url(staff_user(request)))


# My work's first page as SQL, kept per user and filters (selectors.kept.kept_values, the API pages' rules).
MAX_KEPT_PAGES = 2000
_first_pages = process_cache(MAX_KEPT_PAGES, "my work")


def _work_page(tasks: Callable[[dt.datetime], QuerySet[Task]], key: Any, number: str | None, now: dt.datetime) -> Page:
    """Page `number` of the queue `tasks(now)` builds (Paginator.get_page's answer), its rows read by id
    (work_rows). The first page's ids are fetched with one more than it shows: when the queue fits on it, as a
    specialist's usually does, that fetch is its count too, and the COUNT statement (the queue's whole scoped
    filter a second time) is not run. The first page's statements are compiled once per `key` (what the queue
    is built from: the user's row and the filters) and run with a fresh `now`."""
    if number not in (None, "", "1"):
        paginator = Paginator(tasks(now).values_list("pk", flat=True), PAGE_SIZE)
        page = paginator.get_page(number)
        return Page(work_rows(list(page.object_list)), page.number, paginator)
    rows, count = kept_values(_first_pages, key, lambda at: tasks(at).values_list("pk"), limit=PAGE_SIZE + 1, now=now)
    head = [pk for (pk,) in rows]
    paginator = Paginator(head, PAGE_SIZE)
    paginator.count = len(head) if len(head) <= PAGE_SIZE else count()  # a cached_property: set, not computed
    return Page(work_rows(head[:PAGE_SIZE]), 1, paginator)


@login_required
def my_work(request: HttpRequest) -> HttpResponse:
    """My work: tasks assigned to me (overdue first, then by priority and due time) and my roles' pools at my
    care teams' patients, filtered (prong, patient, due window) and paginated by PAGE_SIZE."""
    user = staff_user(request)
    now = timezone.now()
    form = MyWorkFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    due = filters.get("due", "")
    day_start = now
    if due in ("today", "week"):  # only these windows start at the user's local midnight (one query for the zone)
        zone = ZoneInfo(user_timezone_name(user))
        day_start = dt.datetime.combine(now.astimezone(zone).date(), dt.time(), tzinfo=zone)
    prong, patient = filters.get("prong", ""), (filters.get("patient") or "").strip()

    def tasks(at: dt.datetime) -> QuerySet[Task]:
        return my_work_tasks(user=user, now=at, day_start=day_start, prong=prong, patient=patient, due=due)

    page = _work_page(tasks, ("my work", user_key(user), prong, patient, due), request.GET.get("page"), now)
    rows = task_rows(user, page.object_list, now)
    audit_note(
        request,
        entity_type="task",
        entity_ids=[str(row["task"].pk) for row in rows],
        subtype="workspace my work",
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "pathways/work/my_work.html",
        {"form": form, "page": page, "rows": rows, "query": query.urlencode()},
    )


def _perform(action: str, task: Task, user: User, data: dict[str, Any]) -> None:
    """Call the service the API calls for `action` (pathways/api/views.py TaskViewSet), with `task` as the row
    the view locked (task_services.tasks_for_update)."""
    version = data["version"]
    if action == "claim":
        task_services.task_claim(task_id=task.pk, actor=user, expected_version=version, locked=task)
    elif action == "unclaim":
        task_services.task_unclaim(task_id=task.pk, actor=user, expected_version=version, locked=task)
    elif action == "hold":
        task_services.task_hold(
            task_id=task.pk, actor=user, expected_version=version, reason=data["reason"], locked=task
        )
    elif action == "resume":
        task_services.task_resume(task_id=task.pk, actor=user, expected_version=version, locked=task)
    else:
        to_status = {
            "accept": S.ACCEPTED,
            "start": S.IN_PROGRESS,
            "complete": S.COMPLETED,
            "cancel": S.CANCELLED,
            "fail": S.FAILED,
        }[action]
        task_services.task_transition(
            task_id=task.pk,
            to_status=to_status,
            actor=user,
            expected_version=version,
            reason=data.get("reason", ""),
            outcome=data.get("outcome", ""),
            locked=task,
        )


def _fragment_template(request: HttpRequest) -> str:
    return "pathways/work/_task_card.html" if request.POST.get("view") == "card" else "pathways/work/_task_row.html"


def _answer(
    request: HttpRequest,
    user: User,
    task_id: int,
    *,
    status: int,
    notice: str = "",
    error: str = "",
    form_action: str = "",
    form: TaskActionForm | None = None,
    live: str = "",
) -> HttpResponse:
    """The task as it is now, with a notice or a form error: its row or card for htmx, else a page."""
    now = timezone.now()
    task = task_for_action(user=user, task_id=task_id)
    rows = task_rows(user, [task], now) if task is not None else []
    context = {
        "row": rows[0] if rows else None,
        "rows": rows,
        "notice": notice,
        "error": error,
        "form_action": form_action,
        "form": form,
        "live": live or notice or error,
        "next": _safe_next(request, reverse("workspace:my-work")),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, _fragment_template(request), {**context, "swap_live": True}, status=status)
    return render(request, "pathways/work/task_action.html", context, status=status)


@login_required
@require_POST
def task_action(request: HttpRequest, task_id: int, action: str) -> HttpResponse:
    """POST one action (ACTIONS) on one task with its `version` (and `reason` / `outcome` where needed).

    Success: plain post → 303 back to `next` (Post/Redirect/Get); htmx → 200, the task's row or card.
    Someone else first (stale version, illegal transition): the task as it is now with "Changed by X at T"
    (409 page; 200 fragment for htmx, so the swap happens). Invalid input: 400 with the form error. A user
    who may change no task (an auditor): 403. Out of scope or unknown action: 404. Nothing changes unless
    the service succeeds."""
    user = staff_user(request)
    if action not in ACTIONS:
        raise Http404("no such action")
    if is_read_only(user):
        raise PermissionDenied("you may not change tasks")
    # Read once, locked, with what the service needs, and handed to it (`locked=`), as the API's actions do.
    task = task_services.tasks_for_update(tasks_for_action(user=user)).filter(pk=task_id).first()
    if task is None:
        if request.htmx:  # type: ignore[attr-defined]
            return _answer(request, user, task_id, status=404, error="This task is not available to you.")
        raise Http404("no such task")
    audit_note(
        request,
        entity_type="task",
        entity_id=str(task.pk),
        patient_id=task.enrollment.patient_id,
        subtype=f"workspace task {action}",
        action=AuditAction.UPDATE,
    )
    form = TaskActionForm(request.POST, action=action)
    if not form.is_valid():
        field, problems = next(iter(form.errors.items()))
        error = f"{field.capitalize()}: {problems[0]}" if field != "__all__" else str(problems[0])
        return _answer(request, user, task.pk, status=400, error=error, form_action=action, form=form)
    try:
        _perform(action, task, user, form.cleaned_data)
    except Conflict as exc:
        audit_note(request, subtype=f"workspace task {action}: {exc.code}")
        current = task_for_action(user=user, task_id=task.pk) or task
        notice = change_notice(current, task_latest_change(task_id=task.pk))
        return _answer(request, user, task.pk, status=200 if request.htmx else 409, notice=notice)  # type: ignore[attr-defined]
    except NotPermitted as exc:
        if request.htmx:  # type: ignore[attr-defined]
            return _answer(request, user, task.pk, status=403, error=f"Not permitted: {exc.message}.")
        raise PermissionDenied(exc.message) from exc
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except InvalidInput as exc:
        return _answer(request, user, task.pk, status=400, error=exc.message, form_action=action, form=form)
    done = f"{DONE_MESSAGES[action]}: {task.title}."
    if request.htmx:  # type: ignore[attr-defined]
        return _answer(request, user, task.pk, status=200, live=done)
    messages.success(request, done)
    return HttpResponseRedirect(_safe_next(request, reverse("workspace:my-work")), status=303)


@login_required
def task_complete_values(request: HttpRequest, task_id: int) -> HttpResponse:
    """Complete a lab-recheck or assessment task with its values (task_complete_with_values, as POST
    /api/v1/task-completions/): GET shows the form, POST saves and shows what the rules did (new tasks,
    flags raised, schedules held). Stale version: the form again with the "Changed by" notice (409)."""
    user = staff_user(request)
    task = task_for_action(user=user, task_id=task_id)
    if task is None:
        raise Http404("no such task")
    codes = VALUES_FOR_TEMPLATE.get(task.template.code if task.template_id and task.template else "")
    if not codes:
        raise Http404("this task records no values")
    audit_note(
        request,
        entity_type="task",
        entity_id=str(task.pk),
        patient_id=task.enrollment.patient_id,
        subtype="workspace complete with values",
    )
    if is_read_only(user):
        raise PermissionDenied("you may not change tasks")
    now = timezone.now()
    zone = task.enrollment.patient.site.timezone
    context: dict[str, Any] = {"task": task, "row": task_rows(user, [task], now)[0], "notice": ""}
    if request.method != "POST":
        context["form"] = CompleteWithValuesForm(initial={"version": task.version}, codes=codes)
        return render(request, "pathways/work/complete_values.html", context)
    form = CompleteWithValuesForm(request.POST, codes=codes)
    context["form"] = form
    if not form.is_valid():
        return render(request, "pathways/work/complete_values.html", context, status=400)
    data = form.cleaned_data
    try:
        _, result = task_complete_with_values(
            task_id=task.pk,
            actor=user,
            expected_version=data["version"],
            values=[ObservationInput(code, value, unit) for code, value, unit in form.entered()],
            findings=data["findings"],
            note=data["note"],
            outcome=data["outcome"],
        )
    except Conflict as exc:
        audit_note(request, subtype=f"workspace complete with values: {exc.code}")
        current = task_for_action(user=user, task_id=task.pk) or task
        context["notice"] = change_notice(current, task_latest_change(task_id=task.pk))
        context["row"] = task_rows(user, [current], now)[0]
        return render(request, "pathways/work/complete_values.html", context, status=409)
    except NotPermitted as exc:
        raise PermissionDenied(exc.message) from exc
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        form.add_error(None, exc.message)
        for name, problems in exc.fields.items():
            # The service names values by position ("values[1].unit"); show them on the form as a whole.
            for problem in problems:
                form.add_error(None, f"{name}: {problem}")
        return render(request, "pathways/work/complete_values.html", context, status=400)
    audit_note(request, action=AuditAction.UPDATE)
    held = [f for f in result.firings if f.outcome == RuleOutcome.SCHEDULE_HELD]
    created_rows = task_rows(user, result.tasks_created, now) if result.tasks_created else []
    return render(
        request,
        "pathways/work/complete_result.html",
        {
            "task": task,
            "result": result,
            "created": [{**row, "due_local": local_time(row["task"].due_at, zone)} for row in created_rows],
            "held": held,
            "zone": zone,
            "photos_url": (
                reverse("workspace:task-photos", args=[task.pk])
                if task.template_id and task.template and task.template.code in PHOTO_TEMPLATES
                else ""
            ),
        },
    )


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first (PAGE_SIZE a page), unread ones marked."""
    user = staff_user(request)
    page = Paginator(notifications_for(user=user), PAGE_SIZE).get_page(request.GET.get("page"))
    audit_note(
        request,
        entity_type="notification",
        entity_ids=[str(n.pk) for n in page.object_list],
        subtype="workspace notifications",
    )
    return render(request, "pathways/work/notifications.html", {"page": page})


@login_required
@require_POST
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark one notification read (notification_mark_read, as POST /api/v1/notifications/{id}/read/)."""
    user = staff_user(request)
    if not notifications_for(user=user).filter(pk=notification_id).exists():
        raise Http404("no such notification")
    notification_mark_read(notification_id=notification_id, user=user)
    audit_note(request, entity_type="notification", entity_id=str(notification_id), subtype="workspace mark read")
    messages.success(request, "Notification marked read.")
    return HttpResponseRedirect(reverse("workspace:notifications"), status=303)


@login_required
@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    """Mark all of the user's notifications read (notifications_mark_all_read)."""
    user = staff_user(request)
    count = notifications_mark_all_read(user=user)
    audit_note(request, entity_type="notification", subtype="workspace mark all read")
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return HttpResponseRedirect(reverse("workspace:notifications"), status=303)
