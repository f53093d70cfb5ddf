"""Recording clinical data: observations (normalized on entry), derived values, assessments, structured completion.

Every write here goes through `clinical_data_record`, which validates everything first, writes all of it,
computes derived values and runs the rule engine, in one transaction: either the values, their derived
values, and the tasks and flags they trigger all exist, or none of them do.

A resent result (same enrollment, code, value, unit and effective time) is the same measurement: the stored
row is returned and nothing is written or run again. A derived value is stored once per effective time and
inputs. The unique constraint `pathways_observation_unique_measurement` makes a second copy impossible.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from pathways.choices import LIVE_ENROLLMENT_STATUSES, DerivedCode, Finding, ObservationCode, TaskStatus
from pathways.domain import instants, units
from pathways.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted
from pathways.models import Assessment, Enrollment, Flag, Observation, RuleFiring, Task, User
from pathways.selectors.access import is_admin, is_coordinator, scope_enrollments, scope_tasks, specialist_roles
from pathways.services.rules import RuleTrigger, rules_evaluate
from pathways.services.tasks import task_transition

logger = logging.getLogger(__name__)

DEFAULT_DERIVED_WINDOW_HOURS = 72


@dataclass(frozen=True)
class ObservationInput:
    """One value as entered: code, number, unit, optional time and (for PTH) the lab's upper normal."""

    code: str
    value: Any
    unit: str | None = None
    effective_at: dt.datetime | None = None
    reference_high: Any = None
    # The sender's business identifier ("system|value"), stored for idempotent interfaces (FHIR).
    source_identifier: str | None = None


@dataclass
class ClinicalRecordResult:
    """What recording did: the rows stored for the values given and what the rules did with them.

    `observations` and `derived` hold every row the request names, in order, including those already stored
    before it (listed again in `already_stored`: a resent result, or a derived value with the same inputs).
    """

    enrollment: Enrollment
    observations: list[Observation] = field(default_factory=list)
    derived: list[Observation] = field(default_factory=list)
    already_stored: list[Observation] = field(default_factory=list)
    assessment: Assessment | None = None
    firings: list[RuleFiring] = field(default_factory=list)
    tasks_created: list[Task] = field(default_factory=list)
    flags_raised: list[Flag] = field(default_factory=list)
    flags_cleared: list[Flag] = field(default_factory=list)
    # One entry per value given, in order: (its row, whether this request stored it). A value repeating an
    # earlier one of the same request, or a measurement stored before, is (that row, False).
    per_value: list[tuple[Observation, bool]] = field(default_factory=list)

    @property
    def wrote_anything(self) -> bool:
        """False when every value was already stored and there was no assessment: nothing new at all."""
        already = {o.pk for o in self.already_stored}
        return self.assessment is not None or any(o.pk not in already for o in [*self.observations, *self.derived])

    @property
    def new_values(self) -> list[Observation]:
        """The observations and derived values this recording stored (those the rules look at)."""
        already = {o.pk for o in self.already_stored}
        return [o for o in [*self.observations, *self.derived] if o.pk not in already]


@dataclass(frozen=True)
class _Prepared:
    normalized: units.Normalized
    effective_at: dt.datetime
    reference_high: Decimal | None
    reference_high_defaulted: bool
    source_identifier: str | None = None


def derived_window() -> dt.timedelta:
    hours = settings.CAREPATH.get("DERIVED_WINDOW_HOURS", DEFAULT_DERIVED_WINDOW_HOURS)
    return dt.timedelta(hours=int(hours))


def enrollment_for_clinical_write(*, actor: User | None, enrollment_id: int) -> Enrollment:
    """Lock a live enrollment the actor may record clinical data for.

    The row lock serializes recordings for one enrollment, so two labs arriving together cannot both
    decide that "no open task exists yet" (dedupe) or read each other's half-written values (trends).
    """
    try:
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("patient__site", "template")
            .get(pk=enrollment_id)
        )
    except Enrollment.DoesNotExist as exc:
        raise NotFound(f"enrollment {enrollment_id} not found") from exc
    if actor is not None:
        if not scope_enrollments(actor).filter(pk=enrollment.pk).exists():
            raise NotFound(f"enrollment {enrollment_id} not found")
        if not (is_admin(actor) or is_coordinator(actor) or specialist_roles(actor)):
            raise NotPermitted("only clinicians and coordinators can record clinical data")
    if enrollment.status not in LIVE_ENROLLMENT_STATUSES:
        raise IllegalTransition(f"the enrollment is {enrollment.status}; clinical data can no longer be recorded")
    return enrollment


def _prepare(values: Sequence[ObservationInput], *, default_at: dt.datetime, now: dt.datetime) -> list[_Prepared]:
    """Normalize and check every value before anything is written; the first problem raises InvalidInput."""
    prepared = []
    for i, item in enumerate(values):
        prefix = f"values[{i}]" if len(values) > 1 else ""

        def named(exc: InvalidInput, prefix: str = prefix) -> InvalidInput:
            if not prefix:
                return exc
            return InvalidInput(f"{prefix}: {exc.message}", fields={f"{prefix}.{k}": v for k, v in exc.fields.items()})

        try:
            normalized = units.normalize(item.code, item.value, item.unit)
            reference_high, defaulted = None, False
            if item.reference_high is not None and item.reference_high != "":
                ref = units.normalize(item.code, item.reference_high, item.unit, field_name="reference_high")
                if ref.value <= 0:
                    raise InvalidInput(
                        "reference_high must be above zero", fields={"reference_high": ["must be above zero"]}
                    )
                reference_high = ref.value
            elif item.code in units.DEFAULT_REFERENCE_HIGH:
                reference_high, defaulted = units.DEFAULT_REFERENCE_HIGH[item.code], True
            effective_at = item.effective_at or default_at
            if timezone.is_naive(effective_at):
                raise InvalidInput("effective_at needs a timezone", fields={"effective_at": ["give a UTC offset or Z"]})
            instants.check_clinical_time(effective_at, now=now)
        except InvalidInput as exc:
            raise named(exc) from exc
        prepared.append(_Prepared(normalized, effective_at, reference_high, defaulted, item.source_identifier))
    return prepared


def _latest(enrollment: Enrollment, code: str, *, at: dt.datetime) -> Observation | None:
    """The newest value of `code` at or before `at` and no older than the derived window (None if none).

    Both edges are inclusive: a value exactly DERIVED_WINDOW_HOURS old is still used (docs/clinical-rules.md).
    """
    return (
        Observation.objects.filter(
            enrollment=enrollment, code=code, effective_at__lte=at, effective_at__gte=at - derived_window()
        )
        .order_by("-effective_at", "-pk")
        .first()
    )


def _derive(
    enrollment: Enrollment, written: list[Observation], *, actor: User | None, now: dt.datetime
) -> tuple[list[Observation], list[Observation]]:
    """Corrected calcium and Ca x P as of the newest new calcium/albumin/phosphate, from the latest inputs.

    Corrected calcium = calcium + 0.8 x (4.0 - albumin); Ca x P = corrected calcium x phosphate. Inputs
    older than the window (CAREPATH["DERIVED_WINDOW_HOURS"]) before that time are not used: without a
    recent albumin there is no corrected calcium, and so no Ca x P. Returns (derived values, those of
    them already stored with the same inputs).
    """
    relevant = (ObservationCode.CALCIUM, ObservationCode.ALBUMIN, ObservationCode.PHOSPHATE)
    inputs = [o for o in written if o.code in relevant]
    if not inputs:
        return [], []
    at = max(o.effective_at for o in inputs)
    calcium = _latest(enrollment, ObservationCode.CALCIUM, at=at)
    albumin = _latest(enrollment, ObservationCode.ALBUMIN, at=at)
    if calcium is None or albumin is None:
        return [], []
    corrected_value = units.round4(calcium.value + Decimal("0.8") * (Decimal("4.0") - albumin.value))
    wanted = [(DerivedCode.CORRECTED_CALCIUM, corrected_value, [calcium, albumin])]
    phosphate = _latest(enrollment, ObservationCode.PHOSPHATE, at=at)
    if phosphate is not None:
        wanted.append(
            (DerivedCode.CA_X_P, units.round4(corrected_value * phosphate.value), [calcium, albumin, phosphate])
        )
    rows = [
        Observation(
            enrollment=enrollment,
            code=code,
            value=value,
            unit=units.canonical_unit(code),
            effective_at=max(o.effective_at for o in sources),
            recorded_at=now,
            recorded_by=actor,
            inputs_key=",".join(str(pk) for pk in sorted(o.pk for o in sources)),
        )
        for code, value, sources in wanted
    ]
    derived: list[Observation] = []
    already: list[Observation] = []
    links: list[Any] = []
    for (stored, created), (_, _, sources) in zip(_store_many(rows), wanted, strict=True):
        if created:
            links += [Observation.inputs.through(from_observation=stored, to_observation=s) for s in sources]
        else:
            already.append(stored)
        derived.append(stored)
    Observation.inputs.through.objects.bulk_create(links)
    return derived, already


def _same_measurement(row: Observation) -> dict[str, Any]:
    return {
        "enrollment": row.enrollment,
        "code": row.code,
        "effective_at": row.effective_at,
        "value": row.value,
        "unit": row.unit,
        "inputs_key": row.inputs_key,
    }


def _measurement_key(row: Observation) -> tuple[Any, ...]:
    return (row.enrollment_id, row.code, row.effective_at, row.value, row.unit, row.inputs_key)


def _store_many(rows: Sequence[Observation]) -> list[tuple[Observation, bool]]:
    """_store_once for a panel in two statements (a SELECT for the stored measurements, one INSERT for the
    rest): for each row, (the stored row, whether it was inserted now). A row repeating an earlier one of
    `rows` gives that one, not inserted now. When the INSERT meets a unique constraint (a writer that does not
    hold the enrollment lock, or a resent identifier), the panel falls back to one row at a time."""
    if not rows:
        return []
    # The index on (enrollment, code, effective_at) finds the candidates; the exact key picks among them.
    keys = {_measurement_key(row) for row in rows}
    candidates = Observation.objects.filter(
        enrollment_id__in={row.enrollment_id for row in rows},
        code__in={row.code for row in rows},
        effective_at__in={row.effective_at for row in rows},
    ).order_by("pk")
    stored: dict[tuple[Any, ...], Observation] = {}
    for existing in candidates:
        key = _measurement_key(existing)
        if key in keys:
            stored.setdefault(key, existing)
    fresh: dict[tuple[Any, ...], Observation] = {}
    for row in rows:
        key = _measurement_key(row)
        if key not in stored:
            fresh.setdefault(key, row)
    if fresh:
        try:
            with transaction.atomic():
                Observation.objects.bulk_create(list(fresh.values()))
        except IntegrityError:
            return [_store_once(row) for row in rows]
    answer: list[tuple[Observation, bool]] = []
    for row in rows:
        key = _measurement_key(row)
        if key in stored:
            answer.append((stored[key], False))
        else:
            answer.append((fresh[key], fresh[key] is row))
    return answer


def _store_once(row: Observation) -> tuple[Observation, bool]:
    """Insert `row` unless the same measurement is stored: (the stored row, whether it was inserted now).

    The enrollment lock already serializes recordings; the savepoint keeps the unique constraint's answer
    to a writer that does not hold it a reuse of the stored row rather than an aborted transaction.
    """
    existing = Observation.objects.filter(**_same_measurement(row)).order_by("pk").first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        existing = Observation.objects.filter(**_same_measurement(row)).order_by("pk").first()
        if existing is None:
            raise
        return existing, False
    return row, True


def _store_values(
    enrollment: Enrollment,
    prepared: list[_Prepared],
    *,
    assessment: Assessment | None,
    task: Task | None,
    actor: User | None,
    now: dt.datetime,
) -> tuple[list[Observation], list[Observation], list[tuple[Observation, bool]]]:
    """Store each distinct value once: (the distinct rows for the values given, those of them stored before,
    and per value given (its row, whether it was stored now))."""
    candidates = [
        Observation(
            enrollment=enrollment,
            code=p.normalized.code,
            value=p.normalized.value,
            unit=p.normalized.unit,
            entered_value=p.normalized.entered_value,
            entered_unit=p.normalized.entered_unit,
            reference_high=p.reference_high,
            reference_high_defaulted=p.reference_high_defaulted,
            effective_at=p.effective_at,
            recorded_at=now,
            recorded_by=actor,
            assessment=assessment,
            task=task,
            source_identifier=p.source_identifier,
        )
        for p in prepared
    ]
    rows: list[Observation] = []
    already: list[Observation] = []
    per_value = _store_many(candidates)
    for stored, created in per_value:
        if any(r.pk == stored.pk for r in rows):
            continue  # the same value twice in one panel
        rows.append(stored)
        if not created:
            already.append(stored)
    return rows, already, per_value


def _check_findings(findings: Iterable[str]) -> list[str]:
    findings = list(findings)
    bad = [f for f in findings if f not in Finding.values]
    if bad:
        accepted = ", ".join(Finding.values)
        raise InvalidInput(
            f"unknown finding(s) {', '.join(map(str, bad))}; accepted: {accepted}",
            fields={"findings": [f"unknown; use any of: {accepted}"]},
        )
    return sorted(set(findings), key=findings.index)


def clinical_data_record(
    *,
    enrollment: Enrollment,
    values: Sequence[ObservationInput],
    findings: Iterable[str] = (),
    note: str = "",
    effective_at: dt.datetime | None,
    actor: User | None,
    task: Task | None = None,
    now: dt.datetime,
) -> ClinicalRecordResult:
    """Write observations (and an assessment when there are findings or a note), derive, run the rules.

    The caller holds the transaction and the enrollment lock (enrollment_for_clinical_write).
    """
    findings = _check_findings(findings)
    if not values and not findings:
        raise InvalidInput("nothing to record: give at least one value or finding", fields={"values": ["required"]})
    default_at = effective_at or now
    prepared = _prepare(values, default_at=default_at, now=now)

    result = ClinicalRecordResult(enrollment=enrollment)
    if findings or note.strip():
        result.assessment = Assessment.objects.create(
            enrollment=enrollment,
            findings=findings,
            note=note.strip(),
            effective_at=default_at,
            recorded_at=now,
            recorded_by=actor,
            task=task,
        )
    result.observations, already, result.per_value = _store_values(
        enrollment, prepared, assessment=result.assessment, task=task, actor=actor, now=now
    )
    new_measured = [o for o in result.observations if o not in already]
    result.derived, already_derived = _derive(enrollment, new_measured, actor=actor, now=now)
    result.already_stored = [*already, *already_derived]
    if not result.wrote_anything:
        logger.info(
            "clinical data already stored: enrollment=%s observations=%s",
            enrollment.pk,
            [o.pk for o in result.observations],
        )
        return result
    # Only what is new runs the rules: a resent value must not create work again.
    outcome = rules_evaluate(
        enrollment=enrollment,
        trigger=RuleTrigger(observations=result.new_values, findings=findings, assessment=result.assessment),
        actor=actor,
        now=now,
    )
    result.firings, result.tasks_created = outcome.firings, outcome.tasks_created
    result.flags_raised, result.flags_cleared = outcome.flags_raised, outcome.flags_cleared
    logger.info(
        "clinical data recorded: enrollment=%s observations=%s derived=%s already_stored=%s firings=%s",
        enrollment.pk,
        [o.pk for o in result.observations],
        [o.pk for o in result.derived],
        [o.pk for o in result.already_stored],
        [f.pk for f in result.firings],
    )
    return result


@transaction.atomic
def observations_record(
    *,
    enrollment_id: int,
    values: Sequence[ObservationInput],
    actor: User | None,
    findings: Iterable[str] = (),
    note: str = "",
    effective_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> ClinicalRecordResult:
    """Record a set of values (a lab panel, an assessment) for an enrollment and run the pathway's rules."""
    now = now or timezone.now()
    enrollment = enrollment_for_clinical_write(actor=actor, enrollment_id=enrollment_id)
    return clinical_data_record(
        enrollment=enrollment,
        values=values,
        findings=findings,
        note=note,
        effective_at=effective_at,
        actor=actor,
        now=now,
    )


def observation_record(
    *,
    enrollment_id: int,
    code: str,
    value: Any,
    unit: str | None,
    actor: User | None,
    effective_at: dt.datetime | None = None,
    reference_high: Any = None,
    now: dt.datetime | None = None,
) -> ClinicalRecordResult:
    """Record one value (see observations_record)."""
    return observations_record(
        enrollment_id=enrollment_id,
        values=[ObservationInput(code, value, unit, effective_at, reference_high)],
        actor=actor,
        now=now,
    )


@transaction.atomic
def task_complete_with_values(
    *,
    task_id: int,
    actor: User | None,
    expected_version: int | None,
    values: Sequence[ObservationInput] = (),
    findings: Iterable[str] = (),
    note: str = "",
    outcome: str = "",
    now: dt.datetime | None = None,
) -> tuple[Task, ClinicalRecordResult]:
    """Complete a task (labs drawn, assessment done) with the values it produced; they fire rules at once."""
    now = now or timezone.now()
    findings = _check_findings(findings)
    tasks = Task.objects.filter(pk=task_id) if actor is None else scope_tasks(actor).filter(pk=task_id)
    enrollment_id = tasks.values_list("enrollment_id", flat=True).first()
    if enrollment_id is None:
        raise NotFound(f"task {task_id} not found")
    # Lock order: enrollment, then task (the same order as recording without a task).
    enrollment = enrollment_for_clinical_write(actor=None, enrollment_id=enrollment_id)
    # task_transition checks the version, the transition table and the actor's permission.
    task = task_transition(
        task_id=task_id,
        to_status=TaskStatus.COMPLETED,
        actor=actor,
        expected_version=expected_version,
        outcome=outcome,
        data={"values": len(values), "findings": findings},
        now=now,
    )
    record = clinical_data_record(
        enrollment=enrollment,
        values=values,
        findings=findings,
        note=note,
        effective_at=now,
        actor=actor,
        task=task,
        now=now,
    )
    return task, record
