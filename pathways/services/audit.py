"""Writing the audit trail. `audit_record` is the only writer of AuditEvent rows.

Request metadata (request id, client address, method, path) comes from the request context that
pathways.middleware.AuditMiddleware opens for every audited request, so services such as the login service
can record an event without being handed the HTTP request.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from pathways.choices import AuditAction, AuditOutcome
from pathways.domain.units import is_plain_id
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
from pathways.selectors.kept import LRUCache, user_key

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
    """Append one audit event and the sites it concerns (`_sites_select`). Runs inside the caller's transaction
    when there is one, so an audited change and its event commit together or not at all.

    On PostgreSQL the event and its site rows are one statement (a data-modifying WITH): every audited request
    writes them, so they are written without the ORM's per-instance work (issue 15). A `patient_id` that names
    no patient (a request's id for a record that is gone) is stored as null, not refused by the foreign key.
    Returns the event (unsaved-state fields filled, `pk` set). Raises ValueError for an unknown action or
    outcome code."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in AuditOutcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    context = current_request()
    ids = [str(i) for i in entity_ids]
    if len(ids) > MAX_ENTITY_IDS:
        outcome_desc = (outcome_desc + f" ({len(ids)} ids, first {MAX_ENTITY_IDS} kept)").strip()
        ids = ids[:MAX_ENTITY_IDS]
    actor = actor if actor is not None and actor.pk else None
    if patient_id is not None and not _is_id(str(patient_id)):
        patient_id = None  # not a row id at all (a request's value past bigint): nothing to link
    event = AuditEvent(
        recorded_at=now or timezone.now(),
        actor=actor,
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
    insert_sql, insert_params = _event_insert(event)
    sites_sql, sites_params = _sites_select(
        patient_id=patient_id,
        entity_type=entity_type,
        entity_ids=ids,
        actor=actor,
        actor_username=event.actor_username,
        query=query,
    )
    site_table = AuditEventSite._meta.db_table
    # No savepoint of its own: a failed audit write fails the caller's whole transaction rather than being skipped.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and sites_sql:
            cursor.execute(
                f"WITH event AS ({insert_sql}), "  # noqa: S608 - table and column names come from the models
                f'linked AS (INSERT INTO "{site_table}" ("event_id", "site_id") '
                f"SELECT event.id, sites.site_id FROM event, ({sites_sql}) AS sites) "
                "SELECT id, patient_id FROM event",
                [*insert_params, *sites_params],
            )
            event.pk, event.patient_id = cursor.fetchone()
        else:
            cursor.execute(insert_sql, insert_params)
            event.pk, event.patient_id = cursor.fetchone()
            if sites_sql:
                cursor.execute(
                    f'INSERT INTO "{site_table}" ("event_id", "site_id") '  # noqa: S608 - names from the models
                    f"SELECT %s, sites.site_id FROM ({sites_sql}) AS sites",
                    [event.pk, *sites_params],
                )
    event._state.adding = False
    if context is not None:
        context.recorded = True
    return event


def _event_insert(event: AuditEvent) -> tuple[str, list[Any]]:
    """`INSERT … RETURNING id, patient_id` for `event`, every value adapted by its model field (JSON, inet,
    datetimes as the backend stores them); the patient column takes the id only if such a patient exists."""
    columns, placeholders, params = [], [], []
    patient_table = Patient._meta.db_table
    for field in AuditEvent._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(f'"{field.column}"')
        value = field.get_db_prep_save(getattr(event, field.attname), connection)
        if field.name == "patient":
            placeholders.append(f'(SELECT "id" FROM "{patient_table}" WHERE "id" = %s)')  # noqa: S608
        else:
            placeholders.append("%s")
        params.append(value)
    sql = (
        f'INSERT INTO "{AuditEvent._meta.db_table}" ({", ".join(columns)}) '  # noqa: S608 - names from the model
        f'VALUES ({", ".join(placeholders)}) RETURNING "id", "patient_id"'
    )
    return sql, params


@functools.cache
def _record_sites_sql(entity_type: str) -> str | None:
    """`SELECT <site> AS concerned_site FROM <records> JOIN … WHERE <record id>`, to be completed with the ids'
    condition, for a kind of record in _SITE_OF (None for other kinds). Built once per kind from the models'
    foreign keys, so the audit write does not compile a query per request."""
    if entity_type not in _SITE_OF:
        return None
    model, path = _SITE_OF[entity_type]
    *hops, site = path.split("__")
    joins = f'"{model._meta.db_table}" r0'
    current = model
    for depth, hop in enumerate(hops, start=1):
        field = current._meta.get_field(hop)
        current = field.related_model
        joins += (
            f' JOIN "{current._meta.db_table}" r{depth}'
            f' ON r{depth}."{current._meta.pk.column}" = r{depth - 1}."{field.column}"'
        )
    column = current._meta.get_field(site).column
    return (
        f'SELECT r{len(hops)}."{column}" AS "concerned_site" FROM {joins} '  # noqa: S608 - names from the models
        f'WHERE r0."{model._meta.pk.column}"'
    )


def _is_id(value: str) -> bool:
    return is_plain_id(value)


# The actor's reachable sites as SQL, per user row and searched sites: compiled on every audited request before
# (issue 15). scope_sites depends on the user's row only (the user-site table is a subquery), so the key is the row.
_reachable: LRUCache[tuple[str, str, tuple[int, ...]], tuple[str, tuple[Any, ...]]] = LRUCache(4096)


def _reachable_sites(user: User, searched: tuple[int, ...]) -> tuple[str, tuple[Any, ...]]:
    key = (connection.vendor, user_key(user), searched)
    found = _reachable.get(key)
    if found is None:
        reachable = scope_sites(user)
        if searched:
            reachable = reachable.filter(pk__in=searched)
        sql, params = reachable.order_by().values(reachable_site=F("pk")).query.sql_with_params()
        found = (sql, tuple(params))
        _reachable.put(key, found)
    return found


def _sites_select(
    *,
    patient_id: int | None,
    entity_type: str,
    entity_ids: list[str],
    actor: User | None,
    actor_username: str,
    query: str,
) -> tuple[str, list[Any]]:
    """A SELECT of `site_id` ("" when there can be none): the sites an event concerns (docs/audit.md, "Who may
    read which events"). They are the patient's site and the sites of the records it returned (for a search,
    the patients it matched); with neither, the sites the actor could reach (for a search, the sites searched,
    narrowed by ?site=): the actor's, or for a failed login those of the account named. No rows for anonymous
    requests. One statement with the event on PostgreSQL, so the parts are SQL, not Python sets."""
    direct: list[str] = []
    direct_params: list[Any] = []
    if patient_id is not None:
        patient_table = Patient._meta.db_table
        direct.append(f'SELECT "site_id" AS "concerned_site" FROM "{patient_table}" WHERE "id" = %s')  # noqa: S608
        direct_params.append(patient_id)
    numeric = [int(i) for i in entity_ids if _is_id(i)]
    records = _record_sites_sql(entity_type) if numeric else None
    if records is not None:
        if connection.vendor == "postgresql":
            direct.append(f"{records} = ANY(%s)")
            direct_params.append(numeric)
        else:
            direct.append(f"{records} IN ({', '.join(['%s'] * len(numeric))})")
            direct_params.extend(numeric)
    user = actor
    if user is None and actor_username and not direct:
        user = User.objects.filter(username=actor_username).first()
    reachable_sql, reachable_params = "", ()
    if user is not None:
        # The query is the client's: anything but a plain id (e.g. "²", or past bigint) is ignored, never a 500.
        searched = tuple(int(v) for v in parse_qs(query).get("site", []) if _is_id(v))
        reachable_sql, reachable_params = _reachable_sites(user, searched)
    if not direct:
        if not reachable_sql:
            return "", []
        return f'SELECT r."reachable_site" AS "site_id" FROM ({reachable_sql}) AS r', list(reachable_params)  # noqa: S608
    union = " UNION ".join(direct)  # bare parts: SQLite refuses parenthesised members of a compound SELECT
    found = f'SELECT d."concerned_site" AS "site_id" FROM ({union}) AS d WHERE d."concerned_site" IS NOT NULL'  # noqa: S608
    if not reachable_sql:
        return found, direct_params
    # The reachable sites only when the patient and records gave none (a search that matched nothing).
    return (
        f'{found} UNION SELECT r."reachable_site" FROM ({reachable_sql}) AS r WHERE NOT EXISTS ({found})',  # noqa: S608
        [*direct_params, *reachable_params, *direct_params],
    )
