"""Unit normalization against hand-computed values, and rejection of unknown units and impossible values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pathways.domain.units import QUANTITIES, normalize
from pathways.errors import InvalidInput


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected", "canonical"),
    [
        # calcium mmol/L x 4.008
        ("calcium", "2.5", "mmol/L", "10.0200", "mg/dL"),
        ("calcium", "2.12", "mmol/l", "8.4970", "mg/dL"),  # 8.49696 rounds half-up at 4 places
        ("calcium", "9.6", "mg/dL", "9.6000", "mg/dL"),
        # phosphate mmol/L x 3.097
        ("phosphate", "1.8", "mmol/L", "5.5746", "mg/dL"),
        ("phosphate", "1", "MMOL/L", "3.0970", "mg/dL"),
        # PTH: ng/L = pg/mL; pmol/L x 9.43
        ("pth", "30", "pmol/L", "282.9000", "pg/mL"),
        ("pth", "412", "ng/L", "412.0000", "pg/mL"),
        ("pth", "412", "pg/ml", "412.0000", "pg/mL"),
        # albumin g/L / 10
        ("albumin", "35", "g/L", "3.5000", "g/dL"),
        ("albumin", "3.1", "g/dL", "3.1000", "g/dL"),
        # temperature (F - 32) x 5/9
        ("temperature", "100.4", "degF", "38.0000", "degC"),
        ("temperature", "98.6", "°F", "37.0000", "degC"),
        ("temperature", "101", "F", "38.3333", "degC"),
        ("temperature", "37.2", "°C", "37.2000", "degC"),
        # CRP mg/dL x 10
        ("crp", "1.2", "mg/dL", "12.0000", "mg/L"),
        ("aluminium", "30", "µg/L", "30.0000", "ng/mL"),
        ("aluminium", "30", "ug/L", "30.0000", "ng/mL"),
        ("wbc", "12.4", "K/uL", "12.4000", "10^9/L"),
        ("wbc", "12.4", "x10^9/L", "12.4000", "10^9/L"),
        ("bicarbonate", "22", "mEq/L", "22.0000", "mmol/L"),
        ("anion_gap", "14", "mEq/L", "14.0000", "mmol/L"),
        ("alkaline_phosphatase", "150", "IU/L", "150.0000", "U/L"),
        ("wound_length", "15", "mm", "1.5000", "cm"),
        ("wound_depth", "0.4", "cm", "0.4000", "cm"),
        ("systolic_bp", "118", "mm[Hg]", "118.0000", "mmHg"),
        ("inr", "2.4", "", "2.4000", "ratio"),
        ("pain_score", 7, None, "7.0000", "score"),
        ("bwat_cua", 23, "score", "23.0000", "score"),
    ],
)
def test_values_are_converted_to_the_canonical_unit(code, value, unit, expected, canonical) -> None:
    normalized = normalize(code, value, unit)
    assert normalized.value == Decimal(expected)
    assert normalized.unit == canonical
    assert normalized.entered_value == Decimal(str(value))


def test_every_code_has_a_canonical_unit_it_accepts() -> None:
    for code, quantity in QUANTITIES.items():
        assert normalize(code, quantity.low, quantity.canonical).unit == quantity.canonical


@pytest.mark.parametrize(
    ("code", "unit", "accepted"),
    [
        ("calcium", "mEq/L", "mg/dL, mmol/L"),
        ("phosphate", "mg", "mg/dL, mmol/L"),
        ("pth", "ng/mL", "pg/mL, ng/L, pmol/L"),
        ("albumin", "mg/dL", "g/dL, g/L"),
        ("systolic_bp", "kPa", "mmHg"),
    ],
)
def test_an_unknown_unit_is_rejected_naming_the_accepted_units(code, unit, accepted) -> None:
    with pytest.raises(InvalidInput, match=f"accepted units: {accepted}") as exc:
        normalize(code, "5", unit)
    assert "unit" in exc.value.fields


@pytest.mark.parametrize(
    ("code", "value", "unit", "reason"),
    [
        ("pain_score", "11", "score", "accepted range 0-10"),
        ("pain_score", "-1", "score", "accepted range 0-10"),
        ("pain_score", "6.5", "score", "whole number"),
        ("bwat_cua", "7", "score", "accepted range 8-40"),
        ("bwat_cua", "41", "score", "accepted range 8-40"),
        ("phosphate", "-0.5", "mg/dL", "not physiologically plausible"),
        ("calcium", "98", "mg/dL", "accepted range 1-25"),
        # 10 mmol/L of calcium is 40.08 mg/dL: the unit or the value is wrong.
        ("calcium", "10", "mmol/L", r"\(= 40.08 mg/dL\)"),
        ("temperature", "212", "degF", "accepted range 25-45 degC"),
        ("albumin", "35", "g/dL", "accepted range 0.5-7 g/dL"),
        ("calcium", "abc", "mg/dL", "must be a number"),
        ("calcium", "NaN", "mg/dL", "finite"),
        ("calcium", True, "mg/dL", "must be a number"),
    ],
)
def test_an_impossible_value_is_rejected_with_the_reason(code, value, unit, reason) -> None:
    with pytest.raises(InvalidInput, match=reason):
        normalize(code, value, unit)


def test_an_unknown_code_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="unknown observation code 'magnesium'"):
        normalize("magnesium", "2", "mg/dL")
