"""Workspace forms: My work's filters, a task action (version, reason, outcome), and completing a task with
values (one value and unit per observation code the task records, the units being exactly those the API
accepts)."""

from __future__ import annotations

from typing import Any

from django import forms

from pathways.choices import Finding, ObservationCode, Prong
from pathways.domain.units import QUANTITIES
from pathways.selectors.workspace import DUE_FILTERS
from pathways.web.fields import StrictIntegerField

# Task.version is a PositiveIntegerField (PostgreSQL integer); anything larger is malformed input.
MAX_VERSION = 2_147_483_647

# The actions a row can post, each to one service (docs/workspace.md, "Actions").
ACTIONS = ("claim", "unclaim", "accept", "start", "complete", "hold", "resume", "cancel", "fail")
REASON_ACTIONS = frozenset({"hold", "cancel", "fail"})
OUTCOME_ACTIONS = frozenset({"complete"})

# What a lab-recheck or assessment task records when it is completed with values, by task template code.
# The pathway file names no observation codes for its templates, so the mapping lives here, from the
# templates' titles and instructions (pathways/content/calciphylaxis.yaml).
VALUES_FOR_TEMPLATE: dict[str, tuple[str, ...]] = {
    "pre-dialysis-labs": (
        ObservationCode.CALCIUM,
        ObservationCode.PHOSPHATE,
        ObservationCode.ALBUMIN,
        ObservationCode.BICARBONATE,
        ObservationCode.ANION_GAP,
    ),
    "pth-alp": (ObservationCode.PTH, ObservationCode.ALKALINE_PHOSPHATASE),
    "aluminium-level": (ObservationCode.ALUMINIUM,),
    "inr-monitoring": (ObservationCode.INR,),
    "infection-surveillance": (ObservationCode.WBC, ObservationCode.CRP, ObservationCode.TEMPERATURE),
    "wound-assessment": (
        ObservationCode.BWAT_CUA,
        ObservationCode.WOUND_LENGTH,
        ObservationCode.WOUND_WIDTH,
        ObservationCode.WOUND_DEPTH,
    ),
    "pain-score": (ObservationCode.PAIN_SCORE,),
    "pain-score-dialysis": (ObservationCode.PAIN_SCORE,),
}


class MyWorkFilterForm(forms.Form):
    """My work's filters (GET). Invalid values are ignored rather than failing the page."""

    prong = forms.ChoiceField(required=False, choices=[("", "All prongs"), *Prong.choices])
    patient = forms.CharField(required=False, max_length=64, label="Patient (name or MRN)")
    due = forms.ChoiceField(
        required=False,
        label="Due",
        choices=[("", "Any time"), *zip(DUE_FILTERS, ("Today", "This week", "Overdue"), strict=True)],
    )


class TaskActionForm(forms.Form):
    """One action on one task: the version read, and a reason (hold, cancel, fail) or an outcome (complete)."""

    version = StrictIntegerField(max_value=MAX_VERSION, widget=forms.HiddenInput)
    reason = forms.CharField(required=False, max_length=2000)
    outcome = forms.CharField(required=False, max_length=5000)

    def __init__(self, *args: Any, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.action = action
        self.fields["reason"].required = action in REASON_ACTIONS
        self.fields["outcome"].required = action in OUTCOME_ACTIONS


def unit_choices(code: str) -> list[tuple[str, str]]:
    """The units the API accepts for `code`, canonical first (pathways.domain.units.QUANTITIES)."""
    quantity = QUANTITIES[code]
    ordered = [quantity.canonical, *(u for u in quantity.units if u != quantity.canonical)]
    return [(u, u) for u in ordered]


class CompleteWithValuesForm(forms.Form):
    """Completing a task with the values it produced: for each code, a value (text, parsed exactly by the
    service) and a unit; optional findings, a note and an outcome. At least one value or finding."""

    version = StrictIntegerField(max_value=MAX_VERSION, widget=forms.HiddenInput)
    findings = forms.MultipleChoiceField(required=False, choices=Finding.choices, widget=forms.CheckboxSelectMultiple)
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    outcome = forms.CharField(required=False, max_length=5000)

    def __init__(self, *args: Any, codes: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.codes = codes
        labels = dict(ObservationCode.choices)
        for code in codes:
            label = labels[code].split(" (")[0]
            self.fields[f"value_{code}"] = forms.CharField(required=False, max_length=32, label=label)
            self.fields[f"unit_{code}"] = forms.ChoiceField(
                choices=unit_choices(code),
                label=f"{label} unit",
                initial=QUANTITIES[code].canonical,
                widget=forms.Select(attrs={"aria-label": f"{label} unit"}),
            )

    def value_rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        """(code, value field, unit field) for the template, in the task's order."""
        return [(code, self[f"value_{code}"], self[f"unit_{code}"]) for code in self.codes]

    def entered(self) -> list[tuple[str, str, str]]:
        """(code, value, unit) of every value filled in."""
        data = self.cleaned_data
        return [
            (code, data[f"value_{code}"].strip(), data[f"unit_{code}"])
            for code in self.codes
            if data.get(f"value_{code}", "").strip()
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and not self.entered() and not cleaned.get("findings"):
            raise forms.ValidationError("Enter at least one value or finding.", code="empty")
        return cleaned
