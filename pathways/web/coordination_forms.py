"""Forms of the coordinators' pages. They check shapes (the same as the API's input serializers); the services
decide everything else, and their domain errors are put back on the form (see coordination.form_error)."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from pathways.choices import DialysisModality, RiskFactor, RiskMedication, Role, Sex, Therapy, Weekday
from pathways.models import Site, User
from pathways.services.assignment import MAX_BULK
from pathways.web.fields import BoundedDateField, StrictIntegerField

# "<task id>:<version>", ASCII digits only, small enough for the database's integer columns.
_TASK_VERSION = re.compile(r"[0-9]{1,18}:[0-9]{1,9}")
ROLE_LABELS = dict(Role.choices)
WEEKDAY_SHORT = [(int(value), label[:3]) for value, label in Weekday.choices]
REASON_MAX = 2000


class PersonChoiceField(forms.ModelChoiceField):
    """A member of staff, shown by full name (or username) with their roles, so a select names who is who."""

    def label_from_instance(self, obj: Any) -> str:
        roles = ", ".join(str(ROLE_LABELS.get(r, r)) for r in (obj.roles or []))
        return f"{obj.get_full_name() or obj.username} ({roles})" if roles else obj.get_full_name() or obj.username


class SearchForm(forms.Form):
    """The registry's one search box (MRN or name)."""

    q = forms.CharField(required=False, max_length=100, strip=True, label="MRN or name")


class PatientForm(forms.Form):
    """Register or edit a patient: the fields and limits of the API's PatientCreateSerializer."""

    site = forms.ModelChoiceField(queryset=Site.objects.none(), empty_label=None)
    mrn = forms.CharField(max_length=64, label="MRN")
    given_name = forms.CharField(max_length=100)
    family_name = forms.CharField(max_length=100)
    birth_date = BoundedDateField(widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=Sex.choices, initial=Sex.UNKNOWN)
    dialysis_modality = forms.ChoiceField(choices=DialysisModality.choices)
    dialysis_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAY_SHORT, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    dialysis_session_time = forms.TimeField(
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Local time at the site; dialysis-day tasks are due around it (07:00 when empty).",
    )
    risk_factors = forms.MultipleChoiceField(
        choices=RiskFactor.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    risk_medications = forms.MultipleChoiceField(
        choices=RiskMedication.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    current_therapies = forms.MultipleChoiceField(
        choices=Therapy.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the patient takes now; rules such as 'PTH > 9x upper normal despite cinacalcet' read it.",
    )

    def __init__(self, *args: Any, sites: QuerySet[Site] | None = None, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            # The site is not editable: moving a patient between sites changes who may see them.
            del self.fields["site"]
        else:
            cast(forms.ModelChoiceField, self.fields["site"]).queryset = (
                sites if sites is not None else Site.objects.none()
            )

    def clean_birth_date(self) -> Any:
        value = self.cleaned_data["birth_date"]
        if value > timezone.localdate():
            raise forms.ValidationError("cannot be in the future")
        return value


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX, widget=forms.Textarea(attrs={"rows": 2}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class EnrolForm(forms.Form):
    """Enrol as confirmed (treatment, the default) or as a suspected case (the workup first)."""

    diagnosis_status = forms.ChoiceField(
        choices=[
            ("confirmed", "Confirmed calciphylaxis: start treatment"),
            ("provisional", "Suspected: start the workup (confirm or rule out later)"),
        ],
        required=False,
        initial="confirmed",
        widget=forms.RadioSelect,
        label="Diagnosis",
    )

    def clean_diagnosis_status(self) -> str:
        return self.cleaned_data.get("diagnosis_status") or "confirmed"


class NoInputForm(forms.Form):
    """Resume takes nothing but the CSRF token."""


class ReleaseHoldForm(forms.Form):
    template = forms.ChoiceField(choices=(), label="Held schedule")
    reason = forms.CharField(max_length=REASON_MAX, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, held: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["template"]).choices = held


class CareTeamAddForm(forms.Form):
    user = PersonChoiceField(queryset=User.objects.none(), label="Person", empty_label="— choose —")
    role = forms.ChoiceField(choices=(), label="Role on the team")

    def __init__(self, *args: Any, people: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["user"])
        field.queryset = User.objects.filter(pk__in=[p.pk for p in people]).order_by("username")
        specialist = [
            (value, label) for value, label in Role.choices if value not in ("coordinator", "auditor", "admin")
        ]
        cast(forms.ChoiceField, self.fields["role"]).choices = [("", "— choose —"), *specialist]


class BulkAssignForm(forms.Form):
    """Checked tasks as "<id>:<version>" (the version the board showed) and the person to give them to."""

    tasks = forms.MultipleChoiceField(choices=(), widget=forms.CheckboxSelectMultiple)
    assignee = PersonChoiceField(queryset=User.objects.none(), empty_label="— choose —")
    reason = forms.CharField(max_length=REASON_MAX, required=False)

    def __init__(self, *args: Any, people: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["assignee"]).queryset = people
        # The board's rows change between reads: any posted value is a choice, and clean_tasks checks its shape.
        posted = self.data.getlist("tasks") if hasattr(self.data, "getlist") else []
        cast(forms.MultipleChoiceField, self.fields["tasks"]).choices = [(value, value) for value in posted]

    def clean_tasks(self) -> dict[int, int]:
        versions: dict[int, int] = {}
        for value in self.cleaned_data["tasks"]:
            if not _TASK_VERSION.fullmatch(value):
                raise forms.ValidationError("not a task of this board")
            task_id, _, version = value.partition(":")
            versions[int(task_id)] = int(version)
        if len(versions) > MAX_BULK:
            raise forms.ValidationError(f"at most {MAX_BULK} tasks at a time")
        return versions


class ReassignForm(forms.Form):
    assignee = PersonChoiceField(queryset=User.objects.none(), empty_label="— choose —", label="Give it to")
    reason = forms.CharField(max_length=REASON_MAX, widget=forms.Textarea(attrs={"rows": 2}))
    version = StrictIntegerField(max_value=2_000_000_000, widget=forms.HiddenInput)

    def __init__(self, *args: Any, people: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["assignee"])
        field.queryset = User.objects.filter(pk__in=[p.pk for p in people]).order_by("username")


class BoardFilterForm(forms.Form):
    patient = StrictIntegerField(required=False, label="Patient id")
