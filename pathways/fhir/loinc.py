"""The LOINC map (pathways/content/fhir/loinc.yaml): which LOINC codes Carepath tracks, as which observation
code, in which UCUM units. Data, not constants: it is loaded and checked once, and a bad file fails loudly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from pathways.choices import ObservationCode
from pathways.domain import units
from pathways.errors import InvalidInput

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
_LOINC_CODE = re.compile(r"^(\d{1,7})-(\d)$")


@dataclass(frozen=True)
class LoincEntry:
    """One tracked LOINC code: its name, the Carepath code it records, and UCUM unit -> Carepath unit."""

    loinc: str
    name: str
    carepath: str
    units: dict[str, str]

    def carepath_unit(self, ucum: str) -> str | None:
        """The Carepath unit for an incoming unit (case and spaces ignored), or None if it is not accepted."""
        key = unit_key(ucum)
        for accepted, carepath_unit in self.units.items():
            if unit_key(accepted) == key:
                return carepath_unit
        return None


def unit_key(unit: str) -> str:
    return unit.replace(" ", "").casefold()


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the part before the hyphen (the Luhn algorithm)."""
    total = 0
    for position, char in enumerate(reversed(number), start=1):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
        total += digit // 10 + digit % 10
    return (10 - total % 10) % 10


def is_valid_loinc(code: str) -> bool:
    """A syntactically valid LOINC code ("17861-6") whose check digit is right."""
    match = _LOINC_CODE.match(code)
    return bool(match) and loinc_check_digit(match.group(1)) == int(match.group(2))  # type: ignore[union-attr]


def loinc_map_path() -> Path:
    return Path(settings.CAREPATH["CONTENT_DIR"]) / "fhir" / "loinc.yaml"


def loinc_map_parse(data: Any) -> dict[str, LoincEntry]:
    """Check a parsed loinc.yaml and index it by LOINC code; raises ValueError listing every problem."""
    problems: list[str] = []
    entries: dict[str, LoincEntry] = {}
    rows = data.get("codes") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ValueError("loinc.yaml: `codes` must be a non-empty list")
    for i, row in enumerate(rows):
        where = f"codes[{i}]"
        if not isinstance(row, dict) or set(row) != {"loinc", "name", "carepath", "units"}:
            problems.append(f"{where}: needs exactly loinc, name, carepath, units")
            continue
        code, name, carepath, unit_map = str(row["loinc"]), str(row["name"]), str(row["carepath"]), row["units"]
        where = f"{where} ({code})"
        if not is_valid_loinc(code):
            problems.append(f"{where}: not a valid LOINC code (format or check digit)")
        if code in entries:
            problems.append(f"{where}: listed twice")
        if carepath not in ObservationCode.values:
            problems.append(f"{where}: {carepath!r} is not a Carepath observation code")
            continue
        if not isinstance(unit_map, dict) or not unit_map:
            problems.append(f"{where}: units must be a non-empty mapping of UCUM unit -> Carepath unit")
            continue
        for ucum, carepath_unit in unit_map.items():
            try:
                units.resolve_unit(carepath, str(carepath_unit))
            except InvalidInput:
                problems.append(f"{where}: unit {ucum!r} -> {carepath_unit!r} is not a unit of {carepath}")
            molar = "mol" in str(ucum) or "eq/" in str(ucum).lower()
            if "[Moles/volume]" in name and not molar:
                problems.append(f"{where}: a [Moles/volume] code cannot accept {ucum!r}")
            if "[Mass/volume]" in name and molar:
                problems.append(f"{where}: a [Mass/volume] code cannot accept {ucum!r}")
        entries[code] = LoincEntry(code, name, carepath, {str(k): str(v) for k, v in unit_map.items()})
    if problems:
        raise ValueError("invalid LOINC map:\n  " + "\n  ".join(problems))
    return entries


@cache
def loinc_map() -> dict[str, LoincEntry]:
    """The LOINC map shipped in pathways/content/fhir/loinc.yaml, checked (ValueError if it is invalid)."""
    with loinc_map_path().open(encoding="utf-8") as handle:
        return loinc_map_parse(yaml.safe_load(handle))


def preferred_loinc(carepath_code: str) -> LoincEntry | None:
    """The first listed LOINC code for a Carepath code that accepts its canonical unit (used when emitting)."""
    canonical = units.canonical_unit(carepath_code)
    for entry in loinc_map().values():
        if entry.carepath == carepath_code and canonical in entry.units.values():
            return entry
    return None


def ucum_for(carepath_code: str, carepath_unit: str) -> str | None:
    """A UCUM code for a Carepath unit of a code, from the map (None if the map has none, e.g. derived values)."""
    for entry in loinc_map().values():
        if entry.carepath == carepath_code:
            for ucum, unit in entry.units.items():
                if unit == carepath_unit and ucum:
                    return ucum
    return None
