"""Pathway version migration, the pure part: what differs between two versions, and where a schedule's next
occurrence falls when its template's timing changes (Camunda's process-instance migration is the model:
https://docs.camunda.io/docs/components/concepts/process-instance-migration/).

No database access: callers pass plain field mappings (`QuerySet.values()`) and schedule state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pathways.choices import RecurrenceKind
from pathways.domain.recurrence import (
    PatientCalendar,
    RecurrenceSpec,
    first_occurrence,
    next_after_completion,
    occurrence_after,
)

# The fields compared, in the order a reader expects them. Position (display order) is not a change.
TEMPLATE_FIELDS = (
    "title",
    "prong",
    "role",
    "supporting_roles",
    "priority",
    "first_due",
    "due_within_hours",
    "recurrence",
    "applies_if",
    "stage",
    "expires_after_hours",
    "prerequisites",
    "instructions",
    "citation",
)
RULE_FIELDS = ("description", "when", "actions", "citation")
# A change to any of these re-plans the template's schedules from the migration time.
# `recurrence` is compared as the content file writes it: {"kind": ..., parameters...}.
TIMING_FIELDS = frozenset({"first_due", "recurrence"})


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: its value in the old and in the new version."""

    old: Any
    new: Any


@dataclass(frozen=True)
class ItemChange:
    """A task template or rule present in both versions whose fields differ (`fields`: name -> change)."""

    code: str
    fields: dict[str, FieldChange]

    @property
    def timing_changed(self) -> bool:
        return bool(TIMING_FIELDS & set(self.fields))

    @property
    def applicability_changed(self) -> bool:
        # The stage is applicability too: a template moved between workup and treatment starts or ends.
        return bool({"applies_if", "stage"} & set(self.fields))


@dataclass(frozen=True)
class PathwayDiff:
    """What differs between two versions of one pathway, by task template code and rule code.

    Codes are listed in the new version's order (removed ones in the old version's order).
    """

    slug: str
    from_version: int
    to_version: int
    templates_added: list[str] = field(default_factory=list)
    templates_removed: list[str] = field(default_factory=list)
    templates_changed: list[ItemChange] = field(default_factory=list)
    rules_added: list[str] = field(default_factory=list)
    rules_removed: list[str] = field(default_factory=list)
    rules_changed: list[ItemChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.templates_added
            or self.templates_removed
            or self.templates_changed
            or self.rules_added
            or self.rules_removed
            or self.rules_changed
        )

    def template_change(self, code: str) -> ItemChange | None:
        return next((c for c in self.templates_changed if c.code == code), None)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape served by the API and printed by `manage.py pathway_diff --json`:
        {"pathway", "from_version", "to_version", "task_templates": {"added": [code], "removed": [code],
        "changed": [{"code", "fields": {name: {"old", "new"}}}]}, "rules": {same}}."""

        def changed(items: list[ItemChange]) -> list[dict[str, Any]]:
            return [
                {"code": c.code, "fields": {name: {"old": f.old, "new": f.new} for name, f in c.fields.items()}}
                for c in items
            ]

        return {
            "pathway": self.slug,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "task_templates": {
                "added": self.templates_added,
                "removed": self.templates_removed,
                "changed": changed(self.templates_changed),
            },
            "rules": {"added": self.rules_added, "removed": self.rules_removed, "changed": changed(self.rules_changed)},
        }


def _compare(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]], names: tuple[str, ...]
) -> tuple[list[str], list[str], list[ItemChange]]:
    added = [code for code in new if code not in old]
    removed = [code for code in old if code not in new]
    changed = []
    for code, fields in new.items():
        if code not in old:
            continue
        diff = {
            name: FieldChange(old[code].get(name), fields.get(name))
            for name in names
            if old[code].get(name) != fields.get(name)
        }
        if diff:
            changed.append(ItemChange(code, diff))
    return added, removed, changed


def pathway_diff(
    *,
    slug: str,
    from_version: int,
    to_version: int,
    old_templates: Mapping[str, Mapping[str, Any]],
    new_templates: Mapping[str, Mapping[str, Any]],
    old_rules: Mapping[str, Mapping[str, Any]],
    new_rules: Mapping[str, Mapping[str, Any]],
) -> PathwayDiff:
    """Compare two versions: each argument maps a code to that template's (or rule's) field values, in
    display order. Fields compared: TEMPLATE_FIELDS and RULE_FIELDS (JSON values compare by value)."""
    t_added, t_removed, t_changed = _compare(old_templates, new_templates, TEMPLATE_FIELDS)
    r_added, r_removed, r_changed = _compare(old_rules, new_rules, RULE_FIELDS)
    return PathwayDiff(
        slug=slug,
        from_version=from_version,
        to_version=to_version,
        templates_added=t_added,
        templates_removed=t_removed,
        templates_changed=t_changed,
        rules_added=r_added,
        rules_removed=r_removed,
        rules_changed=r_changed,
    )


@dataclass(frozen=True)
class Replanned:
    """A re-planned schedule: its next occurrence's start, and whether it has nothing more to make."""

    next_due_at: dt.datetime | None
    finished: bool


def replanned_next_due(
    spec: RecurrenceSpec,
    *,
    anchor: dt.datetime,
    cal: PatientCalendar,
    now: dt.datetime,
    made: int,
    next_due_at: dt.datetime | None,
    last_completed_at: dt.datetime | None,
) -> Replanned:
    """Where a running schedule's next occurrence falls under a new timing `spec`, re-planned from `now`.

    The schedule keeps its anchor (day numbers and `until_day` still count from enrolment) and its count of
    occurrences made (a `count` bound counts them). Then:
    - calendar and interval kinds: the new rule's first occurrence at or after `now`;
    - once: due at its new first-due time if not made yet (never before `now`), else nothing more;
    - after_completion: a schedule waiting for its open occurrence (`next_due_at` None) keeps waiting (the new
      hours apply when it closes); otherwise N new hours after the last completion (or its first-due time if
      none was completed), never before `now`;
    - on_trigger: nothing is scheduled any more.
    """

    def at_or_after_now(moment: dt.datetime | None) -> Replanned:
        return Replanned(max(moment, now), False) if moment else Replanned(None, True)

    if not spec.is_scheduled:
        return Replanned(None, True)
    if spec.kind == RecurrenceKind.ONCE:
        return Replanned(None, True) if made else at_or_after_now(first_occurrence(spec, anchor=anchor, cal=cal))
    if spec.kind == RecurrenceKind.AFTER_COMPLETION:
        if next_due_at is None and made:
            return Replanned(None, False)
        if last_completed_at is None:
            return at_or_after_now(first_occurrence(spec, anchor=anchor, cal=cal))
        return at_or_after_now(
            next_after_completion(spec, anchor=anchor, cal=cal, completed_at=last_completed_at, made=made)
        )
    following = occurrence_after(spec, anchor=anchor, cal=cal, after=now - dt.timedelta(microseconds=1), made=made)
    return Replanned(following, following is None)
