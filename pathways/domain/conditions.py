"""Rule conditions: one class per condition kind, each validating (``check``) and evaluating (``matches``) itself.

The content loader (pathways.services.content) validates a rule's ``when`` with ``condition_check``; the rule
engine (pathways.services.rules) evaluates it with ``condition_parse(...).matches(...)``. Both dispatch through
``_kind_of`` below, so what the loader accepts is exactly what the engine understands (the same idea as
NetBox's extras/conditions.py, where one class rejects unknown operators and binds the evaluator).

Grammar (YAML in the content file; values in the code's canonical unit, docs/clinical-rules.md):

- ``{any: [cond, ...]}`` / ``{all: [cond, ...]}``: combinators, non-empty lists, nested freely.
- ``{event: finding, findings_any: [Finding, ...]}``: the trigger's assessment findings include one of these.
- ``{event: medication_started, medications_any: [RiskMedication, ...]}``: a ``started`` medication change.
- ``{event: medication_route, routes_any: [MedicationRoute, ...]}``: a medication change (not ``stopped``) by
  one of these routes.
- ``{event: medication_dose_changed, medications_any: [RiskMedication, ...]}``: a ``dose_changed`` medication
  change (a new dose is a new order: issue 14).
- ``{therapies_any: [Therapy, ...]}``: the patient is taking one of these now (``Patient.current_therapies``, as
  the engine reads it when the rule is evaluated); a state, not an event, so it is meant inside ``all``.
- On a code, ``{observation: ObservationCode, ...}`` or ``{derived: DerivedCode, ...}``, plus exactly one of:
  - ``op: gt|ge|lt|le`` with ``value: number``, or with ``times_upper_normal: number`` (compared with
    number x the observation's ``reference_high``; no reference_high, no match);
  - ``op: outside`` with numbers ``low < high`` (value below low or above high);
  - ``trend: rising`` (new value above the previous value of the code, by effective time);
  - ``trend: worse_consecutive`` with optional ``count: N >= 2`` (default 2): the last N changes all increases;
  - ``rise_from_baseline: number``: new value minus the first value at or after enrollment is >= number.

A condition on a code looks only at the values recorded in this trigger; history (previous values, the
baseline) is read through the ``History`` the caller passes in, so this module runs no queries itself.

To add a kind: write a subclass with ``check`` (or ``check_rest`` for a code condition) and ``matches`` (or
``held``), and register it in the table it is dispatched from (``COMBINATORS``, ``EVENTS``, ``OPS``, ``TRENDS``,
``STATES`` or ``_observation_kind``). tests/services/test_conditions.py fails until the new kind has a case there.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pathways.choices import (
    DerivedCode,
    Finding,
    MedicationChangeKind,
    MedicationRoute,
    ObservationCode,
    RiskMedication,
    Therapy,
)

if TYPE_CHECKING:
    from pathways.models import MedicationChange, Observation

Problem = tuple[str, str]  # (field path such as "when.any[1]", message)
CODE_KEYS = ("observation", "derived")
DEFAULT_WORSE_COUNT = 2

T = TypeVar("T")


@dataclass(frozen=True)
class Match:
    """One reason a condition held: the observation (None for events) and the values compared (JSON-ready)."""

    observation: Observation | None
    data: dict[str, Any]


class Facts(Protocol):
    """What was just recorded (pathways.services.rules.RuleTrigger has this shape)."""

    @property
    def observations(self) -> Sequence[Observation]: ...

    @property
    def findings(self) -> Sequence[str]: ...

    @property
    def medication_change(self) -> MedicationChange | None: ...

    @property
    def therapies(self) -> Sequence[str]:
        """The patient's current therapies (Therapy values) when the rule is evaluated."""
        ...


class History(Protocol):
    """Earlier values of the enrollment's observations, read by the caller (the rule engine queries them)."""

    def previous(self, obs: Observation, count: int) -> list[Observation]:
        """Up to `count` values of obs's code before obs (by effective time, then id), newest first."""
        ...

    def baseline(self, obs: Observation) -> Observation | None:
        """The first value of obs's code at or after enrollment (may be obs itself), or None."""
        ...


def unknown_value(value: object, allowed: Iterable[str]) -> str:
    """The loader's message for a value outside a choice list."""
    return f"unknown value {value!r}; expected one of: {', '.join(sorted(allowed))}"


def _choice(field: str, value: object, allowed: Sequence[str]) -> list[Problem]:
    return [] if value in allowed else [(field, unknown_value(value, allowed))]


def _lookup(table: Mapping[str, T], key: object) -> T | None:
    # A list or mapping where a name belongs is a content error, not a TypeError from hashing it.
    return table.get(key) if isinstance(key, str) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(value: Any) -> Decimal:
    return Decimal(str(value))


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f")


class Condition(ABC):
    """One node of a rule's ``when``; built only from a mapping that ``check`` found no problem with."""

    @classmethod
    @abstractmethod
    def check(cls, raw: dict[str, Any], field: str) -> list[Problem]:
        """Every problem with `raw` (a non-empty mapping dispatched to this class), with field paths under `field`."""

    @abstractmethod
    def __init__(self, raw: dict[str, Any]) -> None: ...

    @abstractmethod
    def matches(self, facts: Facts, history: History) -> list[Match]:
        """The reasons this condition holds for what was just recorded; empty means it does not hold."""

    def codes(self) -> set[str]:
        """The observation/derived codes this condition looks at (a new value of one may clear its flag)."""
        return set()


# --- combinators ---------------------------------------------------------------------------------------


class _Combinator(Condition):
    key: ClassVar[str]

    def __init__(self, raw: dict[str, Any]) -> None:
        self.parts = [_build(item) for item in raw[self.key]]

    @classmethod
    def check(cls, raw: dict[str, Any], field: str) -> list[Problem]:
        items = raw[cls.key]
        if not isinstance(items, list) or not items:
            return [(f"{field}.{cls.key}", "must be a non-empty list of conditions")]
        return [p for i, item in enumerate(items) for p in condition_check(item, f"{field}.{cls.key}[{i}]")]

    def codes(self) -> set[str]:
        return {code for part in self.parts for code in part.codes()}


class AnyOf(_Combinator):
    """``{any: [...]}``: holds when one part holds; the reasons are every part's reasons."""

    key = "any"

    def matches(self, facts: Facts, history: History) -> list[Match]:
        return [m for part in self.parts for m in part.matches(facts, history)]


class AllOf(_Combinator):
    """``{all: [...]}``: holds when every part holds; the reasons are all of theirs."""

    key = "all"

    def matches(self, facts: Facts, history: History) -> list[Match]:
        found = [part.matches(facts, history) for part in self.parts]
        return [m for part in found for m in part] if all(found) else []


COMBINATORS: dict[str, type[_Combinator]] = {AnyOf.key: AnyOf, AllOf.key: AllOf}


# --- events --------------------------------------------------------------------------------------------


class Event(Condition):
    """``{event: name, <list_key>: [...]}``; this base class only reports an unknown event name."""

    name: ClassVar[str]
    list_key: ClassVar[str]
    allowed: ClassVar[Sequence[str]]

    def __init__(self, raw: dict[str, Any]) -> None:
        self.values = list(raw[self.list_key])

    @classmethod
    def check(cls, raw: dict[str, Any], field: str) -> list[Problem]:
        if cls is Event:
            return [(f"{field}.event", f"unknown event {raw['event']!r}; expected one of {sorted(EVENTS)}")]
        values = raw.get(cls.list_key)
        if set(raw) != {"event", cls.list_key} or not isinstance(values, list) or not values:
            return [(field, f"event {cls.name} takes exactly one list, {cls.list_key}")]
        return [p for value in values for p in _choice(f"{field}.{cls.list_key}", value, cls.allowed)]


class FindingEvent(Event):
    """``{event: finding, findings_any: [...]}``: one of these findings was recorded with this trigger."""

    name, list_key, allowed = "finding", "findings_any", Finding.values

    def matches(self, facts: Facts, history: History) -> list[Match]:
        hit = [f for f in facts.findings if f in self.values]
        return [Match(None, {"findings": hit})] if hit else []


class _MedicationEvent(Event):
    """A medication change of one kind (``change_kind``) for one of these risk medications."""

    list_key, allowed = "medications_any", RiskMedication.values
    change_kind: ClassVar[str]

    def matches(self, facts: Facts, history: History) -> list[Match]:
        change = facts.medication_change
        if change and change.kind == self.change_kind and change.medication in self.values:
            data = {"medication": change.medication, "drug_name": change.drug_name, "kind": change.kind}
            return [Match(None, data)]
        return []


class MedicationStarted(_MedicationEvent):
    """``{event: medication_started, medications_any: [...]}``: a new order for one of these medications."""

    name, change_kind = "medication_started", MedicationChangeKind.STARTED


class MedicationDoseChanged(_MedicationEvent):
    """``{event: medication_dose_changed, medications_any: [...]}``: a dose change of one of these medications."""

    name, change_kind = "medication_dose_changed", MedicationChangeKind.DOSE_CHANGED


class MedicationRouteEvent(Event):
    """``{event: medication_route, routes_any: [...]}``: a medication started or changed by one of these routes
    (a standing precaution such as "no subcutaneous injections" is checked with it)."""

    name, list_key, allowed = "medication_route", "routes_any", MedicationRoute.values

    def matches(self, facts: Facts, history: History) -> list[Match]:
        change = facts.medication_change
        if change and change.kind != MedicationChangeKind.STOPPED and change.route in self.values:
            data = {"medication": change.medication, "drug_name": change.drug_name, "route": change.route}
            return [Match(None, data)]
        return []


EVENTS: dict[str, type[Event]] = {
    FindingEvent.name: FindingEvent,
    MedicationStarted.name: MedicationStarted,
    MedicationDoseChanged.name: MedicationDoseChanged,
    MedicationRouteEvent.name: MedicationRouteEvent,
}


# --- states of the patient ------------------------------------------------------------------------------


class CurrentTherapy(Condition):
    """``{therapies_any: [Therapy, ...]}``: the patient is taking one of these now (e.g. "despite cinacalcet")."""

    key: ClassVar[str] = "therapies_any"

    def __init__(self, raw: dict[str, Any]) -> None:
        self.values = list(raw[self.key])

    @classmethod
    def check(cls, raw: dict[str, Any], field: str) -> list[Problem]:
        values = raw[cls.key]
        if set(raw) != {cls.key} or not isinstance(values, list) or not values:
            return [(field, f"{cls.key} takes exactly one non-empty list of therapies")]
        return [p for value in values for p in _choice(f"{field}.{cls.key}", value, Therapy.values)]

    def matches(self, facts: Facts, history: History) -> list[Match]:
        hit = [t for t in facts.therapies if t in self.values]
        return [Match(None, {"therapies": hit})] if hit else []


STATES: dict[str, type[Condition]] = {CurrentTherapy.key: CurrentTherapy}


# --- conditions on an observation or derived code -------------------------------------------------------


class CodeCondition(Condition):
    """``{observation|derived: code, ...}``; this base class only reports that no known test follows the code."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.code: str = raw.get("observation") or raw["derived"]
        self.rest = {k: v for k, v in raw.items() if k not in CODE_KEYS}

    @classmethod
    def check(cls, raw: dict[str, Any], field: str) -> list[Problem]:
        if "observation" in raw:
            problems = _choice(f"{field}.observation", raw["observation"], ObservationCode.values)
        else:
            problems = _choice(f"{field}.derived", raw["derived"], DerivedCode.values)
        return problems + cls.check_rest({k: v for k, v in raw.items() if k not in CODE_KEYS}, field)

    @classmethod
    def check_rest(cls, rest: dict[str, Any], field: str) -> list[Problem]:
        """Problems with the keys after the code."""
        return [(field, f"needs op ({', '.join(OPS)}), trend, or rise_from_baseline")]

    @abstractmethod
    def held(self, obs: Observation, history: History) -> dict[str, Any] | None:
        """The compared values if the condition holds for `obs`, else None."""

    def matches(self, facts: Facts, history: History) -> list[Match]:
        found = []
        for obs in facts.observations:
            if obs.code != self.code:
                continue
            data = self.held(obs, history)
            if data is not None:
                seen = {"observation": obs.pk, "code": obs.code, "value": _s(obs.value), "unit": obs.unit}
                found.append(Match(obs, {**seen, **data}))
        return found

    def codes(self) -> set[str]:
        return {self.code}


COMPARISONS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


class Comparison(CodeCondition):
    """``op: gt|ge|lt|le`` with ``value`` (canonical unit) or ``times_upper_normal`` (x reference_high)."""

    @classmethod
    def check_rest(cls, rest: dict[str, Any], field: str) -> list[Problem]:
        limits = set(rest) - {"op"}
        if limits not in ({"value"}, {"times_upper_normal"}) or not all(_is_number(rest[k]) for k in limits):
            return [(field, f"op {rest['op']} takes one number: value or times_upper_normal")]
        return []

    def held(self, obs: Observation, history: History) -> dict[str, Any] | None:
        data: dict[str, Any] = {}
        if "times_upper_normal" in self.rest:
            if obs.reference_high is None:
                return None
            factor = _num(self.rest["times_upper_normal"])
            limit = factor * obs.reference_high
            data.update(
                times_upper_normal=_s(factor),
                reference_high=_s(obs.reference_high),
                reference_high_defaulted=obs.reference_high_defaulted,
            )
        else:
            limit = _num(self.rest["value"])
        op = self.rest["op"]
        data.update(op=op, threshold=_s(limit))
        return data if COMPARISONS[op](obs.value, limit) else None


class Outside(CodeCondition):
    """``op: outside`` with ``low`` < ``high``: the value is below low or above high (the bounds are in range)."""

    @classmethod
    def check_rest(cls, rest: dict[str, Any], field: str) -> list[Problem]:
        if set(rest) != {"op", "low", "high"} or not (_is_number(rest["low"]) and _is_number(rest["high"])):
            return [(field, "op outside takes numbers low and high")]
        if rest["low"] >= rest["high"]:
            return [(field, "low must be below high")]
        return []

    def held(self, obs: Observation, history: History) -> dict[str, Any] | None:
        low, high = _num(self.rest["low"]), _num(self.rest["high"])
        return {"op": "outside", "low": _s(low), "high": _s(high)} if (obs.value < low or obs.value > high) else None


OPS: dict[str, type[CodeCondition]] = {**dict.fromkeys(COMPARISONS, Comparison), "outside": Outside}


class Trend(CodeCondition):
    """``trend: name`` with an optional ``count``; this base class only reports an unknown trend."""

    @classmethod
    def check_rest(cls, rest: dict[str, Any], field: str) -> list[Problem]:
        if _lookup(TRENDS, rest["trend"]) is None or set(rest) - {"trend", "count"}:
            return [(field, f"trend must be one of {sorted(TRENDS)}, with an optional count")]
        if "count" in rest and (not _is_int(rest["count"]) or rest["count"] < 2):
            return [(f"{field}.count", "must be a whole number of at least 2")]
        return []


class Rising(Trend):
    """``trend: rising``: the new value is above the previous value of the code; no previous value, no trend."""

    def held(self, obs: Observation, history: History) -> dict[str, Any] | None:
        previous = history.previous(obs, 1)
        if not previous or obs.value <= previous[0].value:
            return None
        return {"trend": "rising", "previous": _s(previous[0].value), "previous_observation": previous[0].pk}


class WorseConsecutive(Trend):
    """``trend: worse_consecutive, count: N``: the last N changes were all increases (N + 1 values)."""

    def held(self, obs: Observation, history: History) -> dict[str, Any] | None:
        count = int(self.rest.get("count", DEFAULT_WORSE_COUNT))
        series = [obs, *history.previous(obs, count)]  # newest first
        if len(series) < count + 1 or any(series[i].value <= series[i + 1].value for i in range(count)):
            return None
        return {"trend": "worse_consecutive", "count": count, "series": [_s(o.value) for o in reversed(series)]}


TRENDS: dict[str, type[Trend]] = {"rising": Rising, "worse_consecutive": WorseConsecutive}


class RiseFromBaseline(CodeCondition):
    """``rise_from_baseline: X``: new value minus the first value at or after enrollment is >= X."""

    @classmethod
    def check_rest(cls, rest: dict[str, Any], field: str) -> list[Problem]:
        if set(rest) != {"rise_from_baseline"} or not _is_number(rest["rise_from_baseline"]):
            return [(field, "rise_from_baseline takes one number")]
        return []

    def held(self, obs: Observation, history: History) -> dict[str, Any] | None:
        baseline = history.baseline(obs)
        if baseline is None or baseline.pk == obs.pk:
            return None
        rise = obs.value - baseline.value
        if rise < _num(self.rest["rise_from_baseline"]):
            return None
        return {"baseline": _s(baseline.value), "baseline_observation": baseline.pk, "rise": _s(rise)}


# --- dispatch: the one place that decides which class a mapping is --------------------------------------


def _observation_kind(rest: dict[str, Any]) -> type[CodeCondition]:
    if (kind := _lookup(OPS, rest.get("op"))) is not None:
        return kind
    if "trend" in rest:
        return _lookup(TRENDS, rest["trend"]) or Trend
    if "rise_from_baseline" in rest:
        return RiseFromBaseline
    return CodeCondition


def _kind_of(raw: dict[str, Any]) -> type[Condition] | None:
    if len(raw) == 1 and (kind := _lookup(COMBINATORS, next(iter(raw)))) is not None:
        return kind
    if "event" in raw:
        return _lookup(EVENTS, raw["event"]) or Event
    if (state := next((STATES[key] for key in STATES if key in raw), None)) is not None:
        return state
    if any(key in raw for key in CODE_KEYS):
        return _observation_kind({k: v for k, v in raw.items() if k not in CODE_KEYS})
    return None


def condition_check(raw: object, field: str = "when") -> list[Problem]:
    """Every problem with a raw condition, as (field path under `field`, message); empty when it is valid."""
    if not isinstance(raw, dict) or not raw:
        return [(field, "a condition must be a non-empty mapping")]
    kind = _kind_of(raw)
    if kind is None:
        return [(field, "a condition needs one of: observation, derived, event, therapies_any, any, all")]
    return kind.check(raw, field)


def _build(raw: dict[str, Any]) -> Condition:
    kind = _kind_of(raw)
    assert kind is not None  # checked by condition_parse
    return kind(raw)


def condition_parse(raw: object) -> Condition:
    """The condition tree for a rule's ``when``; raises ValueError naming the problems if it is not valid."""
    problems = condition_check(raw)
    if problems:
        raise ValueError(f"condition not understood: {raw!r}: {problems}")
    assert isinstance(raw, dict)
    return _build(raw)
