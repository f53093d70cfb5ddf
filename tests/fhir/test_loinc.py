"""The LOINC map is data, checked when it is loaded."""

from __future__ import annotations

import pytest

from pathways.fhir.loinc import is_valid_loinc, loinc_map, loinc_map_parse


def test_the_shipped_map_loads_and_covers_the_required_codes():
    codes = loinc_map()
    assert codes["17861-6"].carepath == "calcium" and codes["17861-6"].carepath_unit("MG/DL") == "mg/dL"
    assert codes["2000-8"].carepath_unit("mmol/L") == "mmol/L"
    assert codes["49765-1"].carepath == "calcium"
    assert {codes[c].carepath for c in ("2777-1", "14879-1")} == {"phosphate"}
    assert {codes[c].carepath for c in ("2731-8", "14866-8")} == {"pth"}
    assert codes["1751-7"].carepath_unit("g/L") == "g/L"
    tracked = {entry.carepath for entry in codes.values()}
    assert {"alkaline_phosphatase", "aluminium", "bicarbonate", "anion_gap", "wbc", "crp", "temperature"} <= tracked
    assert {"inr", "systolic_bp", "pain_score", "wound_length", "wound_width", "wound_depth"} <= tracked


@pytest.mark.parametrize(("code", "valid"), [("17861-6", True), ("2000-8", True), ("17861-5", False), ("abc-1", False)])
def test_loinc_check_digits(code, valid):
    assert is_valid_loinc(code) is valid


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"loinc": "17861-5", "name": "x", "carepath": "calcium", "units": {"mg/dL": "mg/dL"}}, "check digit"),
        ({"loinc": "17861-6", "name": "x", "carepath": "sodium", "units": {"mg/dL": "mg/dL"}}, "not a Carepath"),
        ({"loinc": "17861-6", "name": "x", "carepath": "calcium", "units": {"mg": "mg"}}, "not a unit of calcium"),
        (
            {"loinc": "2000-8", "name": "Calcium [Moles/volume]", "carepath": "calcium", "units": {"mg/dL": "mg/dL"}},
            "[Moles/volume] code cannot accept",
        ),
        ({"loinc": "17861-6", "carepath": "calcium", "units": {"mg/dL": "mg/dL"}}, "needs exactly"),
    ],
)
def test_a_bad_map_is_refused_naming_the_problem(row, problem):
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        loinc_map_parse({"codes": [row]})


def test_a_code_listed_twice_is_refused():
    row = {"loinc": "17861-6", "name": "x", "carepath": "calcium", "units": {"mg/dL": "mg/dL"}}
    with pytest.raises(ValueError, match="listed twice"):
        loinc_map_parse({"codes": [row, row]})
