"""Rule conditions (pathways/domain/conditions.py): what the loader accepts, the engine evaluates.

Every condition is loaded through the content loader (pathway_content_parse), then evaluated with the engine's
own history (rules.ObservationHistory) on observations stored in PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from pathways.choices import FlagSeverity, MedicationChangeKind, RuleAction, Therapy
from pathways.domain import units
from pathways.domain.conditions import (
    COMBINATORS,
    COMPARISONS,
    EVENTS,
    OPS,
    STATES,
    TRENDS,
    Comparison,
    Condition,
    CurrentTherapy,
    Match,
    Outside,
    RiseFromBaseline,
    Rising,
    WorseConsecutive,
    _Combinator,
    condition_check,
    condition_parse,
)
from pathways.errors import ContentError
from pathways.models import Enrollment, MedicationChange, Observation, Site, User
from pathways.services.content import pathway_content_parse, pathways_load
from pathways.services.enrollment import enrollment_apply
from pathways.services.rules import ACTIONS, ObservationHistory, RuleTrigger
from tests.factories import PatientFactory

DOC = Path(settings.BASE_DIR) / "docs" / "clinical-rules.md"
ENROLLED_AT = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)

# {code: value or [series, oldest first], "findings": [...], "medication_started": name,
#  "medication_dose_changed": name, "medication_route": route, "therapies": [...]}
Spec = dict[str, Any]


def _document(when: object, then: object = None) -> dict[str, Any]:
    """The smallest valid content file with one rule."""
    return {
        "slug": "conditions-test",
        "title": "Conditions test",
        "task_templates": [
            {
                "code": "review",
                "title": "Review",
                "prong": "support",
                "role": "nephrology",
                "recurrence": {"kind": "on_trigger"},
                "citation": "Proposed: a test template.",
            }
        ],
        "rules": [
            {"code": "r", "when": when, "then": then or [{"flag": {"code": "f"}}], "citation": "Proposed: a test rule."}
        ],
    }


def _loaded(when: object) -> Any:
    """The rule's condition as the loader stores it (raises ContentError as the loader does)."""
    document = pathway_content_parse(text=yaml.safe_dump(_document(when)), source="test.yaml")
    return document["rules"][0]["when"]


def _problems(when: object = None, then: object = None) -> list[tuple[str, str, str]]:
    with pytest.raises(ContentError) as excinfo:
        pathway_content_parse(text=yaml.safe_dump(_document(when, then)), source="test.yaml")
    return [(code, field, message) for _, code, field, message in excinfo.value.problems]


MEDICATION_EVENTS = {
    "medication_started": MedicationChangeKind.STARTED,
    "medication_dose_changed": MedicationChangeKind.DOSE_CHANGED,
}


class Harness:
    """Stores a spec's observations (series oldest first, an hour apart, after enrollment) and evaluates.

    The enrollment (on the one-template test pathway, so enrolling is cheap) is made only when a spec has values.
    """

    def __init__(self, site: Site, coordinator: User, tmp_path: Path) -> None:
        self.site, self.coordinator, self.tmp_path = site, coordinator, tmp_path
        self._enrollment: Enrollment | None = None

    @property
    def enrollment(self) -> Enrollment:
        if self._enrollment is None:
            path = self.tmp_path / "conditions-test.yaml"
            path.write_text(yaml.safe_dump(_document({"event": "finding", "findings_any": ["sepsis"]})), "utf-8")
            pathways_load(paths=[path])
            self._enrollment = enrollment_apply(
                patient_id=PatientFactory(site=self.site).pk,
                pathway_slug="conditions-test",
                actor=self.coordinator,
                now=ENROLLED_AT,
            )
        return self._enrollment

    def evaluate(self, when: Any, spec: Spec) -> tuple[list[Match], list[Observation]]:
        new: list[Observation] = []
        change = None
        hour = 0
        for key, value in spec.items():
            if key in ("findings", "therapies"):
                continue
            if key in MEDICATION_EVENTS:
                change = MedicationChange(
                    enrollment=self.enrollment,
                    medication=value,
                    drug_name=f"{value} (test order)",
                    kind=MEDICATION_EVENTS[key],
                )
                continue
            if key == "medication_route":
                change = MedicationChange(
                    enrollment=self.enrollment,
                    medication="corticosteroid",
                    drug_name=f"dexamethasone ({value}, test order)",
                    kind=MedicationChangeKind.STARTED,
                    route=value,
                )
                continue
            series = value if isinstance(value, list) else [value]
            for i, number in enumerate(series):
                hour += 1
                obs = Observation.objects.create(
                    enrollment=self.enrollment,
                    code=key,
                    value=Decimal(str(number)),
                    unit=units.canonical_unit(key),
                    reference_high=units.DEFAULT_REFERENCE_HIGH.get(key),
                    reference_high_defaulted=key in units.DEFAULT_REFERENCE_HIGH,
                    effective_at=ENROLLED_AT + dt.timedelta(hours=hour),
                    recorded_at=ENROLLED_AT + dt.timedelta(hours=hour),
                )
                if i == len(series) - 1:
                    new.append(obs)
        trigger = RuleTrigger(
            observations=new,
            findings=list(spec.get("findings", [])),
            medication_change=change,
            therapies=list(spec.get("therapies", [])),
        )
        condition = condition_parse(_loaded(when))
        return condition.matches(trigger, ObservationHistory(self.enrollment)), new


@pytest.fixture
def harness(site: Site, coordinator: User, tmp_path: Path) -> Harness:
    return Harness(site, coordinator, tmp_path)


# --- (1) every form the loader accepts is evaluated ----------------------------------------------------

# Below, at and above a threshold of 5, per comparison operator (written out, not derived from the code).
AT_BELOW_ABOVE = {
    "gt": (False, False, True),
    "ge": (False, True, True),
    "lt": (True, False, False),
    "le": (True, True, False),
}


def _generated() -> list[tuple[str, Any, Spec, bool]]:
    """(id, condition, values, holds?) for every op, trend, event value and combinator in the module's tables."""
    cases: list[tuple[str, Any, Spec, bool]] = []
    for op, kind in OPS.items():
        if kind is Comparison:
            for value, held in zip((4, 5, 6), AT_BELOW_ABOVE[op], strict=True):
                cases.append(
                    (
                        f"{op}-value-{value}",
                        {"observation": "phosphate", "op": op, "value": 5},
                        {"phosphate": value},
                        held,
                    )
                )
            # PTH's default upper normal is 65 pg/mL: 2 x 65 = 130.
            for value, held in zip((129, 130, 131), AT_BELOW_ABOVE[op], strict=True):
                cond = {"observation": "pth", "op": op, "times_upper_normal": 2}
                cases.append((f"{op}-times_upper_normal-{value}", cond, {"pth": value}, held))
            # No reference_high (no default for phosphate): nothing to compare with, so never holds.
            cond = {"observation": "phosphate", "op": op, "times_upper_normal": 1}
            cases.append((f"{op}-times_upper_normal-without-reference", cond, {"phosphate": 5}, False))
        elif kind is Outside:
            for value, held in ((1.9, True), (2, False), (2.5, False), (3, False), (3.1, True)):
                cond = {"observation": "inr", "op": op, "low": 2, "high": 3}
                cases.append((f"outside-{value}", cond, {"inr": value}, held))
        else:
            raise AssertionError(f"no generated cases for op {op} ({kind.__name__})")
    for trend, kind in TRENDS.items():
        cond = {"observation": "bwat_cua", "trend": trend}
        if kind is Rising:
            for series, held in (([12], False), ([12, 11], False), ([12, 12], False), ([12, 13], True)):
                cases.append((f"rising-{series}", cond, {"bwat_cua": series}, held))
        elif kind is WorseConsecutive:
            for series, held in (
                ([12, 13], False),  # one change: fewer than count (2) changes
                ([12, 13, 14], True),
                ([12, 13, 13], False),
                ([12, 11, 14], False),
                ([9, 10, 11, 12], True),  # only the last count changes are read
            ):
                cases.append((f"worse_consecutive-{series}", cond, {"bwat_cua": series}, held))
            count3 = {**cond, "count": 3}
            cases.append(("worse_consecutive-3-[12, 13, 14]", count3, {"bwat_cua": [12, 13, 14]}, False))
            cases.append(("worse_consecutive-3-[12, 13, 14, 15]", count3, {"bwat_cua": [12, 13, 14, 15]}, True))
        else:
            raise AssertionError(f"no generated cases for trend {trend} ({kind.__name__})")
    cond = {"observation": "anion_gap", "rise_from_baseline": 6}
    for series, held in (([12], False), ([12, 17], False), ([12, 18], True), ([12, 19], True), ([12, 30, 15], False)):
        cases.append((f"rise_from_baseline-{series}", cond, {"anion_gap": series}, held))
    for name, event in EVENTS.items():
        for value in event.allowed:
            other = next(v for v in event.allowed if v != value)
            cond = {"event": name, event.list_key: [value]}
            if name == "finding":
                cases.append((f"finding-{value}", cond, {"findings": [other, value]}, True))
                cases.append((f"finding-{value}-absent", cond, {"findings": [other]}, False))
            elif name in MEDICATION_EVENTS:
                cases.append((f"{name}-{value}", cond, {name: value}, True))
                cases.append((f"{name}-{value}-other", cond, {name: other}, False))
                # The other kind of change to the same medication is another event.
                (twin,) = set(MEDICATION_EVENTS) - {name}
                cases.append((f"{name}-{value}-as-{twin}", cond, {twin: value}, False))
            elif name == "medication_route":
                cases.append((f"medication_route-{value}", cond, {"medication_route": value}, True))
                cases.append((f"medication_route-{value}-other", cond, {"medication_route": other}, False))
            else:
                raise AssertionError(f"no generated cases for event {name}")
    for key, state in STATES.items():
        if state is CurrentTherapy:
            for value in Therapy.values:
                other = next(v for v in Therapy.values if v != value)
                cond = {key: [value]}
                cases.append((f"{key}-{value}", cond, {"therapies": [other, value]}, True))
                cases.append((f"{key}-{value}-absent", cond, {"therapies": [other]}, False))
                cases.append((f"{key}-{value}-none", cond, {}, False))
        else:
            raise AssertionError(f"no generated cases for state {key} ({state.__name__})")
    high = {"observation": "phosphate", "op": "gt", "value": 5}
    sepsis = {"event": "finding", "findings_any": ["sepsis"]}
    for key in COMBINATORS:
        cond = {key: [high, sepsis]}
        for spec, any_held, all_held in (
            ({"phosphate": 6, "findings": ["sepsis"]}, True, True),
            ({"phosphate": 6}, True, False),
            ({"findings": ["sepsis"]}, True, False),
            ({"phosphate": 4}, False, False),
        ):
            held = {"any": any_held, "all": all_held}[key]
            cases.append((f"{key}-{sorted(spec)}-{spec.get('phosphate')}", cond, spec, held))
    return cases


CASES = _generated()


def _leaf_kinds(cls: type[Condition] = Condition) -> set[type[Condition]]:
    """The concrete condition classes: the ones nothing subclasses (bases only report unknown names)."""
    subclasses = cls.__subclasses__()
    return {k for sub in subclasses for k in _leaf_kinds(sub)} if subclasses else {cls}


def _kinds_in(condition: Condition) -> set[type[Condition]]:
    parts = condition.parts if isinstance(condition, _Combinator) else []
    return {type(condition), *(k for part in parts for k in _kinds_in(part))}


def test_every_condition_kind_has_generated_cases() -> None:
    kinds = {type(condition_parse(cond)) for _, cond, _, _ in CASES}
    assert kinds == _leaf_kinds()
    assert {RiseFromBaseline} <= kinds
    assert set(AT_BELOW_ABOVE) == set(COMPARISONS)


@pytest.mark.parametrize(("cond", "spec", "held"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_condition_the_loader_accepts_is_evaluated(harness: Harness, cond: Any, spec: Spec, held: bool) -> None:
    matches, new = harness.evaluate(cond, spec)
    assert bool(matches) is held, matches
    for match in matches:
        if match.observation is not None:
            assert match.observation in new  # only values of this trigger, never history
            assert match.data["observation"] == match.observation.pk


def test_a_comparison_records_the_values_it_compared(harness: Harness) -> None:
    [match], [obs] = harness.evaluate({"observation": "pth", "op": "gt", "times_upper_normal": 9}, {"pth": 600})
    assert match.observation == obs
    assert match.data == {
        "observation": obs.pk,
        "code": "pth",
        "value": "600",
        "unit": obs.unit,
        "times_upper_normal": "9",
        "reference_high": "65",
        "reference_high_defaulted": True,
        "op": "gt",
        "threshold": "585",
    }


def test_codes_are_the_observation_codes_a_condition_reads() -> None:
    cond = {
        "any": [{"observation": "wbc", "trend": "rising"}, {"all": [{"derived": "ca_x_p", "op": "ge", "value": 55}]}]
    }
    assert condition_parse(_loaded(cond)).codes() == {"wbc", "ca_x_p"}
    assert condition_parse(_loaded({"event": "finding", "findings_any": ["sepsis"]})).codes() == set()


# --- (2) the examples in docs/clinical-rules.md ---------------------------------------------------------


def _doc_examples() -> list[dict[str, Any]]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    return [example for block in blocks for example in yaml.safe_load(block)]


def _doc_inline_conditions() -> list[Any]:
    """Conditions quoted inline in the prose, e.g. `{observation: phosphate, op: gt, value: 6.0}`."""
    text = DOC.read_text(encoding="utf-8")
    spans = re.findall(r"`(\{(?:observation|derived|event|therapies_any|any|all):[^`]*\})`", text)
    return [yaml.safe_load(span) for span in spans]


def test_the_docs_show_every_condition_kind() -> None:
    examples = _doc_examples()
    assert len(examples) >= 10
    shown = {k for example in examples for k in _kinds_in(condition_parse(_loaded(example["when"])))}
    assert shown == _leaf_kinds()


@pytest.mark.parametrize("example", _doc_examples(), ids=lambda e: str(e["when"])[:60])
def test_every_example_in_the_docs_loads_and_fires_as_the_docs_say(harness: Harness, example: dict[str, Any]) -> None:
    fired, _ = harness.evaluate(example["when"], example["fires"])
    assert fired, f"{example['when']} should fire on {example['fires']}"


@pytest.mark.parametrize("example", _doc_examples(), ids=lambda e: str(e["when"])[:60])
def test_every_example_in_the_docs_stays_quiet_as_the_docs_say(harness: Harness, example: dict[str, Any]) -> None:
    quiet, _ = harness.evaluate(example["when"], example["quiet"])
    assert not quiet, f"{example['when']} should not fire on {example['quiet']}"


def test_conditions_quoted_in_the_prose_load_and_evaluate(harness: Harness) -> None:
    inline = _doc_inline_conditions()
    assert inline, "the threshold example in 'Changing a threshold at a site' was not found"
    for cond in inline:
        condition = condition_parse(_loaded(cond))
        matches, _ = harness.evaluate(cond, dict.fromkeys(condition.codes(), 1))
        assert isinstance(matches, list)


# --- (3) unknown kinds, operators and names are rejected with the loader's message -----------------------

REJECTED = [
    ({"colour": "red"}, "when", "a condition needs one of: observation, derived, event, therapies_any, any, all"),
    ([{"observation": "phosphate"}], "when", "a condition must be a non-empty mapping"),
    ({"any": []}, "when.any", "must be a non-empty list of conditions"),
    (
        {"observation": "phosphate", "op": "eq", "value": 5},
        "when",
        "needs op (gt, ge, lt, le, outside), trend, or rise_from_baseline",
    ),
    (
        {"observation": "phosphate", "op": "gt", "value": "5"},
        "when",
        "op gt takes one number: value or times_upper_normal",
    ),
    ({"observation": "inr", "op": "outside", "low": 3, "high": 2}, "when", "low must be below high"),
    (
        {"all": [{"observation": "wbc", "trend": "falling"}]},
        "when.all[0]",
        "trend must be one of ['rising', 'worse_consecutive'], with an optional count",
    ),
    (
        {"observation": "bwat_cua", "trend": "worse_consecutive", "count": 1},
        "when.count",
        "must be a whole number of at least 2",
    ),
    ({"observation": "anion_gap", "rise_from_baseline": [6]}, "when", "rise_from_baseline takes one number"),
    (
        {"any": [{}, {"event": "fall", "findings_any": ["sepsis"]}]},
        "when.any[1].event",
        "unknown event 'fall'; expected one of "
        "['finding', 'medication_dose_changed', 'medication_route', 'medication_started']",
    ),
    ({"event": "finding", "findings_any": []}, "when", "event finding takes exactly one list, findings_any"),
    (
        {"event": "medication_started", "medications_any": ["aspirin"]},
        "when.medications_any",
        "unknown value 'aspirin'; expected one of: calcium_binder, corticosteroid, iron, vitamin_d, warfarin",
    ),
    ({"therapies_any": []}, "when", "therapies_any takes exactly one non-empty list of therapies"),
    (
        {"therapies_any": ["cinacalcet"], "observation": "pth"},
        "when",
        "therapies_any takes exactly one non-empty list of therapies",
    ),
    (
        {"all": [{"therapies_any": ["aspirin"]}]},
        "when.all[0].therapies_any",
        "unknown value 'aspirin'; expected one of: alteplase, apixaban, cinacalcet, immunosuppressant, ",
    ),
    (
        {"observation": "glucose", "op": "gt", "value": 5},
        "when.observation",
        "unknown value 'glucose'; expected one of: ",
    ),
    # A list where a name belongs is a content error, not a crash while hashing it.
    (
        {"event": ["finding"]},
        "when.event",
        "unknown event ['finding']; expected one of "
        "['finding', 'medication_dose_changed', 'medication_route', 'medication_started']",
    ),
    ({"observation": "phosphate", "op": ["gt"], "value": 5}, "when", "needs op (gt, ge, lt, le, outside), trend"),
    ({"observation": "wbc", "trend": ["rising"]}, "when", "trend must be one of ['rising', 'worse_consecutive']"),
]


@pytest.mark.parametrize(("cond", "field", "message"), REJECTED, ids=[str(r[0])[:50] for r in REJECTED])
def test_an_unknown_kind_or_operator_is_rejected_with_the_loaders_message(cond: Any, field: str, message: str) -> None:
    problems = _problems(cond)
    assert any(f == field and m.startswith(message) for _, f, m in problems), problems
    assert all(code == "r" for code, _, _ in problems)
    # The domain check is the loader's check, and the engine refuses what it rejects.
    assert [(f, m) for _, f, m in problems] == condition_check(cond, "when")
    with pytest.raises(ValueError, match="condition not understood"):
        condition_parse(cond)


# --- actions ----------------------------------------------------------------------------------------------


def test_the_engine_performs_every_action_the_loader_accepts() -> None:
    assert set(ACTIONS) == set(RuleAction.values)


def test_an_unknown_action_or_flag_severity_is_rejected_naming_the_choices() -> None:
    cond = {"observation": "phosphate", "op": "gt", "value": 5}
    assert _problems(cond, [{"page_someone": "nephrology"}]) == [
        ("r", "then[0]", "each action is exactly one of create_task, ad_hoc_task, flag, hold_schedule")
    ]
    assert _problems(cond, [{"flag": {"code": "f", "severity": "red"}}]) == [
        (
            "r",
            "then[0].flag.severity",
            f"unknown value 'red'; expected one of: {', '.join(sorted(FlagSeverity.values))}",
        )
    ]
    assert _problems(cond, [["flag"]]) == [
        ("r", "then[0]", "each action is exactly one of create_task, ad_hoc_task, flag, hold_schedule")
    ]
