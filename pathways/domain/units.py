"""Units of measure: the canonical unit of every observation code, accepted spellings, conversions, plausibility.

Everything is stored in the canonical unit so that rules compare like with like; what was entered is kept
beside it. A unit that is not in this table is rejected, never guessed (a calcium of 2.4 could be mmol/L
or a typo for mg/dL, and the difference is a missed hypercalcaemia).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from pathways.choices import DerivedCode, ObservationCode
from pathways.errors import InvalidInput

Obs = ObservationCode
FOUR_PLACES = Decimal("0.0001")


def _times(factor: str) -> Callable[[Decimal], Decimal]:
    return lambda v: v * Decimal(factor)


def _divided_by(divisor: str) -> Callable[[Decimal], Decimal]:
    return lambda v: v / Decimal(divisor)


def _same(v: Decimal) -> Decimal:
    return v


def _fahrenheit_to_celsius(v: Decimal) -> Decimal:
    return (v - 32) * 5 / 9


@dataclass(frozen=True)
class Quantity:
    """How one code is measured: canonical unit, accepted units (spelling -> conversion), plausible range."""

    canonical: str
    # Accepted unit (as displayed) -> conversion to the canonical unit.
    units: dict[str, Callable[[Decimal], Decimal]]
    low: Decimal
    high: Decimal
    whole_numbers: bool = False
    # Extra spellings that mean one of `units` (compared after _spelling()).
    aliases: dict[str, str] = field(default_factory=dict)


# Plausible ranges are wide on purpose: they catch typing and unit errors (a calcium of 98, a negative
# phosphate), not abnormal results, which are exactly what the rules are for.
QUANTITIES: dict[str, Quantity] = {
    # Calcium mmol/L x 4.008 = mg/dL (molar mass 40.08 g/mol).
    Obs.CALCIUM: Quantity("mg/dL", {"mg/dL": _same, "mmol/L": _times("4.008")}, Decimal(1), Decimal(25)),
    # Phosphate (as phosphorus) mmol/L x 3.097 = mg/dL (30.97 g/mol).
    Obs.PHOSPHATE: Quantity("mg/dL", {"mg/dL": _same, "mmol/L": _times("3.097")}, Decimal("0.3"), Decimal(30)),
    # Albumin g/L / 10 = g/dL.
    Obs.ALBUMIN: Quantity("g/dL", {"g/dL": _same, "g/L": _divided_by("10")}, Decimal("0.5"), Decimal(7)),
    # PTH pg/mL = ng/L; pmol/L x 9.43 = pg/mL (intact PTH, 9.4 kDa).
    Obs.PTH: Quantity("pg/mL", {"pg/mL": _same, "ng/L": _same, "pmol/L": _times("9.43")}, Decimal(0), Decimal(10000)),
    Obs.ALKALINE_PHOSPHATASE: Quantity(
        "U/L", {"U/L": _same, "IU/L": _same}, Decimal(0), Decimal(10000), aliases={"ui/l": "U/L"}
    ),
    # Aluminium ng/mL = ug/L.
    Obs.ALUMINIUM: Quantity("ng/mL", {"ng/mL": _same, "ug/L": _same}, Decimal(0), Decimal(2000)),
    Obs.BICARBONATE: Quantity("mmol/L", {"mmol/L": _same, "mEq/L": _same}, Decimal(1), Decimal(60)),
    # A negative anion gap is a laboratory artefact (e.g. lithium, bromide, paraproteins): re-check it.
    Obs.ANION_GAP: Quantity("mmol/L", {"mmol/L": _same, "mEq/L": _same}, Decimal(0), Decimal(60)),
    # 10^9/L = 10^3/uL = K/uL (same number).
    Obs.WBC: Quantity(
        "10^9/L",
        {"10^9/L": _same, "10^3/uL": _same, "K/uL": _same},
        Decimal(0),
        Decimal(500),
        aliases={"x10^9/l": "10^9/L", "10*9/l": "10^9/L", "giga/l": "10^9/L", "x10^3/ul": "10^3/uL"},
    ),
    # CRP mg/dL x 10 = mg/L.
    Obs.CRP: Quantity("mg/L", {"mg/L": _same, "mg/dL": _times("10")}, Decimal(0), Decimal(1000)),
    Obs.TEMPERATURE: Quantity(
        "degC",
        {"degC": _same, "degF": _fahrenheit_to_celsius},
        Decimal(25),
        Decimal(45),
        aliases={"c": "degC", "°c": "degC", "cel": "degC", "f": "degF", "°f": "degF", "[degf]": "degF"},
    ),
    Obs.INR: Quantity("ratio", {"ratio": _same}, Decimal("0.5"), Decimal(20), aliases={"": "ratio", "inr": "ratio"}),
    Obs.SYSTOLIC_BP: Quantity("mmHg", {"mmHg": _same}, Decimal(30), Decimal(300), aliases={"mm[hg]": "mmHg"}),
    # Numeric rating scale: whole numbers 0-10.
    Obs.PAIN_SCORE: Quantity(
        "score", {"score": _same}, Decimal(0), Decimal(10), whole_numbers=True, aliases={"": "score", "/10": "score"}
    ),
    # BWAT-CUA: 8 items scored 1-5, total 8-40; higher is worse.
    Obs.BWAT_CUA: Quantity(
        "score", {"score": _same}, Decimal(8), Decimal(40), whole_numbers=True, aliases={"": "score"}
    ),
    Obs.WOUND_LENGTH: Quantity("cm", {"cm": _same, "mm": _divided_by("10")}, Decimal(0), Decimal(100)),
    Obs.WOUND_WIDTH: Quantity("cm", {"cm": _same, "mm": _divided_by("10")}, Decimal(0), Decimal(100)),
    Obs.WOUND_DEPTH: Quantity("cm", {"cm": _same, "mm": _divided_by("10")}, Decimal(0), Decimal(30)),
}

DERIVED_UNITS: dict[str, str] = {DerivedCode.CORRECTED_CALCIUM: "mg/dL", DerivedCode.CA_X_P: "mg2/dL2"}

# Used for PTH rules when the lab did not report its upper limit of normal (recorded as defaulted).
DEFAULT_REFERENCE_HIGH: dict[str, Decimal] = {Obs.PTH: Decimal(65)}


def _spelling(unit: str) -> str:
    return unit.strip().replace("µ", "u").replace("μ", "u").replace(" ", "").lower()


def canonical_unit(code: str) -> str:
    if code in DERIVED_UNITS:
        return DERIVED_UNITS[code]
    return QUANTITIES[code].canonical


def resolve_unit(code: str, unit: str | None) -> str:
    """The accepted unit that `unit` spells, or InvalidInput naming the accepted ones."""
    quantity = QUANTITIES[code]
    spelled = _spelling(unit or "")
    for name in quantity.units:
        if _spelling(name) == spelled:
            return name
    if spelled in quantity.aliases:
        return quantity.aliases[spelled]
    accepted = ", ".join(quantity.units)
    raise InvalidInput(
        f"unknown unit {unit!r} for {code}; accepted units: {accepted}",
        fields={"unit": [f"unknown unit for {code}; use one of: {accepted}"]},
    )


# Plain ASCII decimal notation, the one reading of every number the service accepts (docs/api.md, "Numbers").
# Python's Decimal() and int() also read "1_0", "1e3", "Infinity" and non-ASCII digits such as "\u0661\u0660"
# (Arabic-Indic 10), issue 12.
# Nine integer digits keep every accepted value inside the NUMERIC(14, 4) columns; places beyond four are rounded
# when stored (round4). Seventeen places admit any double as a lab system prints it: Synthea's FHIR Bundles carry
# values such as 9.033962176872736, and real feeds must be accepted as they come (issue 17).
MAX_INTEGER_DIGITS = 9
MAX_DECIMAL_PLACES = 17
_PLAIN_DECIMAL = re.compile(rf"-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{1,{MAX_DECIMAL_PLACES}}})?", re.ASCII)
_PLAIN_INTEGER = re.compile(r"[0-9]{1,18}", re.ASCII)
# The largest id or count accepted (PostgreSQL bigint).
MAX_INTEGER = 2**63 - 1


def to_decimal(value: object, *, field_name: str = "value") -> Decimal:
    """A Decimal from a JSON number or a string in plain decimal notation: an optional "-", 1-9 ASCII digits,
    optionally "." and 1-17 ASCII digits (surrounding spaces ignored). Floats go through str() to keep what was
    typed. Exponents, "_", non-ASCII digits, "NaN"/"Infinity", and a negative zero ("-0", "-0.0") raise
    InvalidInput naming `field_name`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidInput(f"{field_name} must be a number", fields={field_name: ["must be a number"]})
    text = str(value).strip(" \t\r\n")
    if not _PLAIN_DECIMAL.fullmatch(text):
        message = (
            f"must be a number in plain decimal notation: finite, ASCII digits, at most {MAX_INTEGER_DIGITS} "
            f"before the point and {MAX_DECIMAL_PLACES} after it, no exponent"
        )
        raise InvalidInput(f"{field_name} {message}", fields={field_name: [message]})
    number = Decimal(text)
    if text.startswith("-") and number == 0:
        raise InvalidInput(f"{field_name} cannot be negative zero", fields={field_name: ["cannot be negative zero"]})
    return number


def is_plain_id(text: str, max_digits: int = 18) -> bool:
    """Whether `text` is 1 to `max_digits` ASCII digits: a number int() reads as the reader sees it.
    str.isdigit() alone also passes "²" and "①", which int() refuses (a ValueError, so a 500), and Arabic-Indic
    digits, which int() reads as other numbers than an ASCII reader of the log would."""
    return text.isascii() and text.isdigit() and len(text) <= max_digits


def to_int(value: object, *, field_name: str, minimum: int = 0, maximum: int = MAX_INTEGER) -> int:
    """A whole number from a JSON integer or a string of 1-18 ASCII digits, within [minimum, maximum].

    The one reading of ids, versions, counts and page sizes: "1_0", "\u0661\u0660", "+1", "1.0", " 1" and
    booleans raise InvalidInput naming `field_name`."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{field_name} must be an integer", fields={field_name: ["must be an integer"]})
    text = str(value)
    negative = isinstance(value, int) and value < 0
    if not negative and not _PLAIN_INTEGER.fullmatch(text):
        raise InvalidInput(
            f"{field_name} must be an integer in ASCII digits", fields={field_name: ["must be an integer"]}
        )
    number = int(text)
    if not minimum <= number <= maximum:
        bound = f"between {minimum} and {maximum}"
        raise InvalidInput(f"{field_name} must be {bound}", fields={field_name: [f"must be {bound}"]})
    return number


def round4(value: Decimal) -> Decimal:
    return value.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Normalized:
    """An entered value converted to the canonical unit."""

    code: str
    value: Decimal
    unit: str
    entered_value: Decimal
    entered_unit: str


def normalize(code: str, value: object, unit: str | None, *, field_name: str = "value") -> Normalized:
    """Convert to the canonical unit and check plausibility; raises InvalidInput (before anything is written)."""
    if code not in QUANTITIES:
        accepted = ", ".join(QUANTITIES)
        raise InvalidInput(
            f"unknown observation code {code!r}; expected one of: {accepted}",
            fields={"code": [f"unknown code; use one of: {accepted}"]},
        )
    quantity = QUANTITIES[code]
    entered_unit = resolve_unit(code, unit)
    entered = to_decimal(value, field_name=field_name)
    canonical = round4(quantity.units[entered_unit](entered))
    if quantity.whole_numbers and entered != entered.to_integral_value():
        raise InvalidInput(f"{code} must be a whole number", fields={field_name: ["must be a whole number"]})
    if not quantity.low <= canonical <= quantity.high:
        shown = f"{_fmt(entered)} {entered_unit}"
        if entered_unit != quantity.canonical:
            shown += f" (= {_fmt(canonical)} {quantity.canonical})"
        limits = f"{_fmt(quantity.low)}-{_fmt(quantity.high)} {quantity.canonical}"
        raise InvalidInput(
            f"{code} {shown} is not physiologically plausible (accepted range {limits}); check the value and unit",
            fields={field_name: [f"outside the plausible range {limits}"]},
        )
    return Normalized(
        code=code, value=canonical, unit=quantity.canonical, entered_value=entered, entered_unit=entered_unit
    )
