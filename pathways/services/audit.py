"""Writing the audit trail. `audit_record` is the only writer of AuditEvent rows.

Request metadata (request id, client address, method, path) comes from the request context that
pathways.middleware.AuditMiddleware opens for every audited request, so services such as the login service
can record an event without being handed the HTTP request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from django.db import transaction
from django.utils import timezone

from pathways.choices import AuditAction, AuditOutcome
from pathways.models import (
    AuditEvent,
    AuditEventSite,
    CareTeamMember,
    Enrollment,
    Flag,
    MedicationChange,
    Notification,
    Observation,
    Patient,
    Task,
    User,
    WoundPhoto,
)
from pathways.request_context import current_request
from pathways.selectors.access import scope_sites

# The page of a list read is recorded id by id; beyond this many ids only the count is kept in outcome_desc.
MAX_ENTITY_IDS = 500

# How to find the site of each kind of record a list or search can return (entity_type -> model, lookup).
_SITE_OF: dict[str, tuple[type[Any], str]] = {
    "patient": (Patient, "site_id"),
    "enrollment": (Enrollment, "patient__site_id"),
    "task": (Task, "enrollment__patient__site_id"),
    "careteammember": (CareTeamMember, "enrollment__patient__site_id"),
    "observation": (Observation, "enrollment__patient__site_id"),
    "flag": (Flag, "enrollment__patient__site_id"),
    "medicationchange": (MedicationChange, "enrollment__patient__site_id"),
    "notification": (Notification, "task__enrollment__patient__site_id"),
    "woundphoto": (WoundPhoto, "enrollment__patient__site_id"),
}


def outcome_for_status(http_status: int) -> str:
    """FHIR outcome for an HTTP status: denials (401/403/429) are serious, other client errors minor."""
    if http_status >= 500:
        return AuditOutcome.MAJOR_FAILURE
    if http_status in (401, 403, 429):
        return AuditOutcome.SERIOUS_FAILURE
    if http_status >= 400:
        return AuditOutcome.MINOR_FAILURE
    return AuditOutcome.SUCCESS


def patient_id_of(obj: Any) -> int | None:
    """The patient a record is about, if any (a site or a pathway template is about no patient)."""
    if isinstance(obj, Patient):
        return obj.pk
    if isinstance(obj, Enrollment):
        return obj.patient_id
    patient_id = getattr(obj, "patient_id", None)
    if isinstance(patient_id, int):
        return patient_id
    enrollment_id = getattr(obj, "enrollment_id", None)
    if enrollment_id is not None:
        enrollment = getattr(obj, "enrollment", None)
        return enrollment.patient_id if isinstance(enrollment, Enrollment) else None
    task = getattr(obj, "task", None)
    if task is not None and task is not obj:
        return patient_id_of(task)
    return None


def patient_id_of_enrollment(enrollment_id: Any) -> int | None:
    try:
        pk = int(enrollment_id)
    except (TypeError, ValueError):
        return None
    return Enrollment.objects.filter(pk=pk).values_list("patient_id", flat=True).first()


def audit_record(
    *,
    action: str,
    subtype: str,
    outcome: str = AuditOutcome.SUCCESS,
    actor: User | None = None,
    actor_username: str = "",
    entity_type: str = "",
    entity_id: Any = "",
    entity_ids: Iterable[Any] = (),
    patient_id: int | None = None,
    outcome_desc: str = "",
    http_status: int | None = None,
    query: str = "",
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Append one audit event. Runs inside the caller's transaction when there is one, so an audited change
    and its event commit together or not at all."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in AuditOutcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    context = current_request()
    ids = [str(i) for i in entity_ids]
    if len(ids) > MAX_ENTITY_IDS:
        outcome_desc = (outcome_desc + f" ({len(ids)} ids, first {MAX_ENTITY_IDS} kept)").strip()
        ids = ids[:MAX_ENTITY_IDS]
    # No savepoint of its own: a failed audit write fails the caller's whole transaction rather than being skipped.
    with transaction.atomic(savepoint=False):
        event = AuditEvent.objects.create(
            recorded_at=now or timezone.now(),
            actor=actor if actor is not None and actor.pk else None,
            actor_username=(actor_username or (actor.get_username() if actor is not None else ""))[:150],
            action=action,
            subtype=subtype[:64],
            entity_type=entity_type[:64],
            entity_id=str(entity_id)[:64] if entity_id not in (None, "") else "",
            entity_ids=ids,
            patient_id=patient_id,
            outcome=outcome,
            outcome_desc=outcome_desc[:200],
            http_status=http_status,
            method=context.method[:8] if context else "",
            path=context.path[:500] if context else "",
            query=query,
            source_address=context.source_address if context else None,
            request_id=context.request_id if context else "",
        )
        sites = _sites_concerned(
            patient_id=patient_id,
            entity_type=entity_type,
            entity_ids=ids,
            actor=event.actor,
            actor_username=event.actor_username,
            query=query,
        )
        if sites:
            AuditEventSite.objects.bulk_create([AuditEventSite(event=event, site_id=site) for site in sorted(sites)])
    if context is not None:
        context.recorded = True
    return event


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 18


def _sites_concerned(
    *,
    patient_id: int | None,
    entity_type: str,
    entity_ids: list[str],
    actor: User | None,
    actor_username: str,
    query: str,
) -> set[int]:
    """The sites an event concerns (docs/audit.md, "Who may read which events"): the patient's site and the
    sites of the records it returned (for a search, the patients it matched). With neither, the sites the
    actor could reach (for a search, the sites searched, narrowed by ?site=): the actor's, or for a failed
    login those of the account named. Empty for anonymous requests."""
    sites: set[int] = set()
    if patient_id is not None:
        sites.update(Patient.objects.filter(pk=patient_id).values_list("site_id", flat=True))
    lookup = _SITE_OF.get(entity_type)
    numeric = [int(i) for i in entity_ids if _is_id(i)]
    if lookup is not None and numeric:
        model, path = lookup
        # order_by(): a model's default ordering would join the DISTINCT and return one row per record.
        sites.update(model.objects.filter(pk__in=numeric).order_by().values_list(path, flat=True).distinct())
    if sites:
        return {s for s in sites if s is not None}
    user = actor
    if user is None and actor_username:
        user = User.objects.filter(username=actor_username).first()
    if user is None:
        return set()
    reachable = scope_sites(user)
    # The query is the client's: anything but a plain id (e.g. "²", or past bigint) is ignored, never a 500.
    searched = [int(v) for v in parse_qs(query).get("site", []) if _is_id(v)]
    if searched:
        reachable = reachable.filter(pk__in=searched)
    return set(reachable.values_list("pk", flat=True))
