"""Read and search: which resource types are served, from which scoped querysets, with which search
parameters (each one a filter on the scoped queryset, so out-of-scope rows are never found)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from fhir.resources.R4B.resource import Resource

from pathways.choices import DerivedCode, ObservationCode, Role, TaskStatus
from pathways.domain.units import is_plain_id
from pathways.fhir import definitions, resources
from pathways.fhir.loinc import LOINC_SYSTEM, loinc_map
from pathways.fhir.outcome import error
from pathways.fhir.systems import MRN_SYSTEM, OBSERVATION_CODES, ROLE_CODES, plan_definition_url
from pathways.models import Enrollment, Flag, Observation, User
from pathways.selectors.access import (
    can_view_audit_log,
    scope_audit_events,
    scope_enrollments,
    scope_pathway_templates,
    scope_patients,
    scope_tasks,
    scope_wound_photos,
)

Filter = Callable[[QuerySet[Any], list[str]], QuerySet[Any]]
_DATE_PREFIX = re.compile(r"^(eq|gt|ge|lt|le)?(.+)$")


@dataclass(frozen=True)
class SearchParam:
    """One search parameter: its FHIR type, what it filters, and its documentation for the CapabilityStatement."""

    name: str
    type: str
    apply: Filter
    documentation: str


@dataclass(frozen=True)
class ResourceKind:
    """A served resource type: its scoped queryset, its builder, its search parameters and its audit name."""

    name: str
    audit_entity: str
    queryset: Callable[[User], QuerySet[Any]]
    build: Callable[[Any], Resource]
    patient_of: Callable[[Any], int | None]
    params: dict[str, SearchParam] = field(default_factory=dict)
    # Who may read this type at all (others get a 403); None: every member of staff, scoped by the queryset.
    allowed: Callable[[User], bool] | None = None
    # The scoped queryset narrowed to some patients inside the scope (a search by `patient`), where the scope
    # is cheaper that way (Task: access.scope_tasks's `enrollments`).
    for_patients: Callable[[User, list[int]], QuerySet[Any]] | None = None


def _ids(values: list[str], kind: str, param: str) -> list[int]:
    out = []
    for value in values:
        tail = value.rsplit("/", 1)
        if len(tail) == 2 and not value.endswith(f"{kind}/{tail[1]}"):
            raise error(400, "invalid", f"{param} must reference {kind}/<id>", param)
        if not is_plain_id(tail[-1]):
            raise error(400, "invalid", f"{param}: {value!r} is not a {kind} reference", param)
        out.append(int(tail[-1]))
    return out


def _tokens(values: list[str], param: str, system: str | None, allowed: list[str] | None) -> list[str]:
    out = []
    for value in values:
        given_system, bar, code = value.rpartition("|")
        if bar and given_system and system is not None and given_system != system:
            raise error(400, "invalid", f"{param}: unknown system {given_system!r}", param)
        if allowed is not None and code not in allowed:
            raise error(400, "invalid", f"{param}: unknown code {code!r}; use one of: {', '.join(allowed)}", param)
        out.append(code)
    return out


_FHIR_TASK_STATUSES = sorted(set(resources.TASK_STATUS.values()))


def _task_statuses(fhir_codes: list[str]) -> list[str]:
    """The Carepath statuses behind FHIR Task status codes (`failed` is failed or missed)."""
    return [s for s in TaskStatus.values if resources.TASK_STATUS[s] in fhir_codes]


def _date_filter(column: str) -> Filter:
    def apply(qs: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
        # Repeated parameters AND together (date=ge2025-01-01&date=lt2025-02-01), as in FHIR.
        for value in values:
            match = _DATE_PREFIX.match(value)
            prefix, text = (match.group(1) or "eq", match.group(2)) if match else ("eq", value)
            start, end = _date_range(text, column)
            if prefix == "eq":
                qs = qs.filter(**{f"{column}__gte": start, f"{column}__lt": end})
            elif prefix == "gt":
                qs = qs.filter(**{f"{column}__gte": end})
            elif prefix == "ge":
                qs = qs.filter(**{f"{column}__gte": start})
            elif prefix == "lt":
                qs = qs.filter(**{f"{column}__lt": start})
            else:
                qs = qs.filter(**{f"{column}__lt": end})
        return qs

    return apply


def _date_range(text: str, param: str) -> tuple[dt.datetime, dt.datetime]:
    """A FHIR date or dateTime as the half-open UTC interval it covers (a day, or an instant)."""
    try:
        moment = parse_datetime(text.replace(" ", "+"))
        day = None if moment else parse_date(text)
    except ValueError:
        moment, day = None, None
    if moment is not None:
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=dt.UTC)
        return moment, moment + dt.timedelta(microseconds=1)
    if day is not None:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
        return start, start + dt.timedelta(days=1)
    raise error(400, "invalid", f"{text!r} is not a FHIR date or dateTime", param)


def _id_param(name: str = "_id") -> SearchParam:
    return SearchParam(name, "token", lambda qs, v: qs.filter(pk__in=_ids(v, "", name)), "The logical id")


def _patient_param(column: str) -> SearchParam:
    return SearchParam(
        "patient",
        "reference",
        lambda qs, v: qs.filter(**{f"{column}__in": _ids(v, "Patient", "patient")}),
        "Patient/<id> (or the bare id)",
    )


def _patient_identifier(qs: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
    condition = Q(pk__in=[])
    for value in values:
        system, bar, mrn = value.rpartition("|")
        if bar and system:
            site = MRN_SYSTEM.match(system)
            if not site:
                raise error(400, "invalid", "identifier system must be urn:carepath:site:<site>:mrn", "identifier")
            condition |= Q(site__code=site.group(1), mrn=mrn)
        else:
            condition |= Q(mrn=mrn)
    return qs.filter(condition)


def _observation_codes(qs: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
    codes: set[str] = set()
    for value in values:
        system, _, code = value.rpartition("|")
        if system in ("", LOINC_SYSTEM) and code in loinc_map():
            codes.add(loinc_map()[code].carepath)
        elif system in ("", OBSERVATION_CODES) and code in [*ObservationCode.values, *DerivedCode.values]:
            codes.add(code)
        elif system not in ("", LOINC_SYSTEM, OBSERVATION_CODES):
            raise error(400, "invalid", f"code: unknown system {system!r}", "code")
    return qs.filter(code__in=codes)


def _plan_url(qs: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
    # A canonical may carry its version (url|version), as CarePlan.instantiatesCanonical does.
    condition = Q(pk__in=[])
    for value in values:
        url, _, version = value.partition("|")
        slug = url.rsplit(":", 1)[-1]
        if url != plan_definition_url(slug):
            continue
        condition |= Q(slug=slug, version=int(version)) if is_plain_id(version, 8) else Q(slug=slug)
    return qs.filter(condition)


def _flag_status(qs: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
    statuses = set(_tokens(values, "status", None, ["active", "inactive"]))
    if statuses == {"active"}:
        return qs.filter(cleared_at__isnull=True)
    if statuses == {"inactive"}:
        return qs.filter(cleared_at__isnull=False)
    return qs


SPECIALIST_ROLE_CODES = [r.value for r in Role]

KINDS: dict[str, ResourceKind] = {
    "Patient": ResourceKind(
        "Patient",
        "patient",
        lambda user: scope_patients(user).select_related("site").order_by("pk"),
        resources.patient_resource,
        lambda p: p.pk,
        {
            "_id": _id_param(),
            "identifier": SearchParam(
                "identifier", "token", _patient_identifier, "The MRN: urn:carepath:site:<site>:mrn|<mrn>"
            ),
        },
    ),
    "CarePlan": ResourceKind(
        "CarePlan",
        "enrollment",
        lambda user: scope_enrollments(user).select_related("template").order_by("pk"),
        resources.careplan_resource,
        lambda e: e.patient_id,
        {
            "_id": _id_param(),
            "patient": _patient_param("patient_id"),
            "status": SearchParam(
                "status",
                "token",
                lambda qs, v: qs.filter(status__in=_tokens(v, "status", None, list(resources.CAREPLAN_STATUS))),
                "active | on-hold | completed | revoked",
            ),
        },
    ),
    "Task": ResourceKind(
        "Task",
        "task",
        lambda user: scope_tasks(user).select_related("enrollment", "template").order_by("due_at", "pk"),
        resources.task_resource,
        lambda t: t.enrollment.patient_id,
        {
            "_id": _id_param(),
            "patient": _patient_param("enrollment__patient_id"),
            "owner": SearchParam(
                "owner",
                "reference",
                lambda qs, v: qs.filter(assignee_id__in=_ids(v, "Practitioner", "owner")),
                "Practitioner/<user id>: the assignee",
            ),
            "status": SearchParam(
                "status",
                "token",
                lambda qs, v: qs.filter(status__in=_task_statuses(_tokens(v, "status", None, _FHIR_TASK_STATUSES))),
                "FHIR Task status (Carepath's statuses are a subset; failed includes missed session work)",
            ),
            "performer": SearchParam(
                "performer",
                "token",
                lambda qs, v: qs.filter(role__in=_tokens(v, "performer", ROLE_CODES, SPECIALIST_ROLE_CODES)),
                "The role pool (performerType), urn:carepath:codesystem:role",
            ),
            "_lastUpdated": SearchParam(
                "_lastUpdated", "date", _date_filter("updated_at"), "When the task last changed"
            ),
            "due": SearchParam(
                "due",
                "date",
                _date_filter("due_at"),
                "The due time, Task.restriction.period.end (SearchParameter/task-due)",
            ),
        },
        for_patients=lambda user, ids: (
            scope_tasks(user, enrollments=Enrollment.objects.filter(patient_id__in=ids).values("pk"))
            .select_related("enrollment", "template")
            .order_by("due_at", "pk")
        ),
    ),
    "Observation": ResourceKind(
        "Observation",
        "observation",
        lambda user: (
            Observation.objects.filter(enrollment__in=scope_enrollments(user))
            .select_related("enrollment")
            .prefetch_related("inputs")
            .order_by("-effective_at", "-pk")
        ),
        resources.observation_resource,
        lambda o: o.enrollment.patient_id,
        {
            "_id": _id_param(),
            "patient": _patient_param("enrollment__patient_id"),
            "code": SearchParam("code", "token", _observation_codes, "LOINC (http://loinc.org) or Carepath code"),
            "date": SearchParam("date", "date", _date_filter("effective_at"), "The effective time"),
            "derived-from": SearchParam(
                "derived-from",
                "reference",
                lambda qs, v: qs.filter(inputs__in=_ids(v, "Observation", "derived-from")).distinct(),
                "Observation/<id>: derived values computed from it",
            ),
        },
    ),
    "Flag": ResourceKind(
        "Flag",
        "flag",
        lambda user: (
            Flag.objects.filter(enrollment__in=scope_enrollments(user))
            .select_related("enrollment")
            .order_by("-raised_at", "-pk")
        ),
        resources.flag_resource,
        lambda f: f.enrollment.patient_id,
        {
            "_id": _id_param(),
            "patient": _patient_param("enrollment__patient_id"),
            "status": SearchParam("status", "token", _flag_status, "active | inactive"),
        },
    ),
}

KINDS["Media"] = ResourceKind(
    "Media",
    "woundphoto",
    lambda user: (
        scope_wound_photos(user)
        .select_related("enrollment", "task")
        .prefetch_related("task__observations")
        .order_by("-taken_at", "-pk")
    ),
    resources.media_resource,
    lambda m: m.enrollment.patient_id,
    {
        "_id": _id_param(),
        "patient": _patient_param("enrollment__patient_id"),
        "created": SearchParam("created", "date", _date_filter("taken_at"), "When the photograph was taken"),
    },
)
KINDS["PlanDefinition"] = ResourceKind(
    "PlanDefinition",
    "pathwaytemplate",
    lambda user: scope_pathway_templates(user).prefetch_related("task_templates").order_by("pk"),
    definitions.plan_definition_resource,
    lambda p: None,
    {
        "_id": _id_param(),
        "url": SearchParam(
            "url",
            "uri",
            _plan_url,
            "urn:carepath:plandefinition:<slug>",
        ),
        "version": SearchParam(
            "version",
            "token",
            lambda qs, v: qs.filter(version__in=[int(x) for x in v if is_plain_id(x, 8)]),
            "The pathway version (a whole number)",
        ),
        "status": SearchParam(
            "status",
            "token",
            lambda qs, v: qs.filter(status__in=_tokens(v, "status", None, ["draft", "active", "retired"])),
            "draft | active | retired",
        ),
    },
)
KINDS["CareTeam"] = ResourceKind(
    "CareTeam",
    "enrollment",
    lambda user: scope_enrollments(user).prefetch_related("care_team__user").order_by("pk"),
    definitions.care_team_resource,
    lambda e: e.patient_id,
    {"_id": _id_param(), "patient": _patient_param("patient_id")},
)
KINDS["AuditEvent"] = ResourceKind(
    "AuditEvent",
    "auditevent",
    lambda user: scope_audit_events(user).order_by("-recorded_at", "-pk"),
    definitions.audit_event_resource,
    lambda a: a.patient_id,
    {
        "_id": _id_param(),
        "date": SearchParam("date", "date", _date_filter("recorded_at"), "When it was recorded"),
        "agent": SearchParam(
            "agent",
            "reference",
            lambda qs, v: qs.filter(actor_id__in=_ids(v, "Practitioner", "agent")),
            "Practitioner/<user id>: who did it",
        ),
        "patient": _patient_param("patient_id"),
    },
    allowed=can_view_audit_log,
)

DEFAULT_COUNT = 50
MAX_COUNT = 200
CONTROL_PARAMS = frozenset({"_count", "_offset", "_format"})


def search_apply(kind: ResourceKind, user: User, params: dict[str, list[str]]) -> tuple[QuerySet[Any], int, int]:
    """The scoped, filtered queryset and the page (count, offset); unknown parameters are a 400, never ignored."""
    kind_check(kind, user)
    unknown = sorted(set(params) - set(kind.params) - CONTROL_PARAMS)
    if unknown:
        raise error(400, "not-supported", f"unknown search parameter(s): {', '.join(unknown)}", *unknown)
    if kind.for_patients is not None and params.get("patient"):
        patients = [part.strip() for value in params["patient"] for part in value.split(",") if part.strip()]
        qs = kind.for_patients(user, _ids(patients, "Patient", "patient"))
    else:
        qs = kind.queryset(user)
    for name, values in params.items():
        if name in kind.params:
            split = [
                part for value in values for part in ([value] if kind.params[name].type == "date" else value.split(","))
            ]
            qs = kind.params[name].apply(qs, [v.strip() for v in split if v.strip()])
    count = _bounded_int(params, "_count", DEFAULT_COUNT, 1, MAX_COUNT)
    offset = _bounded_int(params, "_offset", 0, 0, 10_000_000)
    return qs, count, offset


def kind_check(kind: ResourceKind, user: User) -> None:
    """A 403 OperationOutcome when the user may not read this type at all (AuditEvent: auditors, admins)."""
    if kind.allowed is not None and not kind.allowed(user):
        raise error(403, "forbidden", f"{kind.name} is for auditors and admins")


def _bounded_int(params: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    values = params.get(name)
    if not values:
        return default
    text = values[-1]
    if not is_plain_id(text) or not low <= int(text) <= high:
        raise error(400, "invalid", f"{name} must be a whole number from {low} to {high}", name)
    return int(text)


__all__ = ["KINDS", "ResourceKind", "SearchParam", "search_apply"]
