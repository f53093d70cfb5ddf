"""Lab results from interfaces (FHIR): the observation service plus the sender's identifier, so that a result
sent again is recognised and creates nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from pathways.models import Observation, User
from pathways.services.observations import (
    ClinicalRecordResult,
    ObservationInput,
    clinical_data_record,
    enrollment_for_clinical_write,
)


@dataclass
class LabResultsOutcome:
    """One row per input, in input order: the Observation stored for it and whether this call created it."""

    observations: list[Observation] = field(default_factory=list)
    created: list[bool] = field(default_factory=list)
    record: ClinicalRecordResult | None = None


@transaction.atomic
def lab_results_record(
    *,
    enrollment_id: int,
    values: Sequence[ObservationInput],
    actor: User | None,
    now: dt.datetime | None = None,
) -> LabResultsOutcome:
    """Record lab values for an enrollment (units, plausibility, derived values, rules: observations_record).

    A value whose `source_identifier` ("system|value") is already stored for the enrollment, or repeats one
    earlier in `values`, is not recorded again: its row is the stored one and `created` is False. Raises what
    observations_record raises (NotFound, NotPermitted, IllegalTransition, InvalidInput); nothing is written
    then. `values` must not be empty.
    """
    now = now or timezone.now()
    # The enrollment lock serializes senders, so the identifier check below cannot race another request.
    enrollment = enrollment_for_clinical_write(actor=actor, enrollment_id=enrollment_id)
    identifiers = [v.source_identifier for v in values if v.source_identifier]
    stored = {
        o.source_identifier: o
        for o in Observation.objects.filter(enrollment=enrollment, source_identifier__in=identifiers)
    }
    new: list[ObservationInput] = []
    seen: set[str] = set()
    for value in values:
        key = value.source_identifier
        if key and (key in stored or key in seen):
            continue
        if key:
            seen.add(key)
        new.append(value)
    outcome = LabResultsOutcome()
    answered: dict[int, tuple[Observation, bool]] = {}
    if new:
        outcome.record = clinical_data_record(
            enrollment=enrollment, values=new, effective_at=None, actor=actor, now=now
        )
        # Per value: its row and whether this request stored it. A measurement already stored (under another
        # identifier, or none) or repeated in this request is not "created", whatever its identifier says.
        for value, (row, created) in zip(new, outcome.record.per_value, strict=True):
            answered[id(value)] = (row, created)
            if value.source_identifier:
                stored.setdefault(value.source_identifier, row)
    for value in values:
        if id(value) in answered:
            row, created = answered[id(value)]
        else:  # its identifier is stored, or was given earlier in `values`
            row, created = stored[value.source_identifier or ""], False
        outcome.observations.append(row)
        outcome.created.append(created)
    return outcome
