"""Query filters. Every value is validated: an unknown enum, a malformed date or a non-boolean flag is a 400."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from pathways.api.base import staff
from pathways.api.fields import AwareDateTimeFilter, IdFilter, strict_id
from pathways.choices import OPEN_TASK_STATUSES, EnrollmentStatus, Priority, Prong, Role, TaskStatus, TemplateStatus
from pathways.domain.instants import DATETIME_HELP
from pathways.errors import InvalidInput
from pathways.models import Enrollment, Notification, PathwayTemplate, Patient, Task
from pathways.selectors.access import specialist_roles


class StrictBooleanField(forms.Field):
    """true/false/1/0 only; Django's NullBooleanField turns anything else into "no filter"."""

    TRUE, FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError("must be true or false")


class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class AssigneeField(forms.Field):
    def to_python(self, value: Any) -> str | int | None:
        text = str(value or "").strip()
        if not text:
            return None
        if text == "me":
            return "me"
        try:
            return strict_id(text, field_name="assignee")
        except InvalidInput:
            raise forms.ValidationError("must be a user id or 'me'") from None


class AssigneeFilter(django_filters.Filter):
    field_class = AssigneeField


class TaskFilter(django_filters.FilterSet):
    assignee = AssigneeFilter(method="filter_assignee", help_text="A user id, or `me`.")
    pool = StrictBooleanFilter(
        method="filter_pool",
        help_text="true: unassigned tasks in the caller's specialist roles (any role for coordinators and admins).",
    )
    # distinct=False: a column of the task row itself, so no row can repeat; django-filter's default DISTINCT made
    # PostgreSQL de-duplicate whole wide rows and count through a subquery (issue 15).
    status = django_filters.MultipleChoiceFilter(
        choices=TaskStatus.choices, help_text="Repeat for several.", distinct=False
    )
    prong = django_filters.ChoiceFilter(choices=Prong.choices)
    role = django_filters.ChoiceFilter(choices=Role.choices)
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    enrollment = IdFilter(field_name="enrollment_id")
    patient = IdFilter(field_name="enrollment__patient_id")
    due_before = AwareDateTimeFilter(field_name="due_at", lookup_expr="lt", help_text=f"{DATETIME_HELP}.")
    due_after = AwareDateTimeFilter(field_name="due_at", lookup_expr="gte", help_text=f"{DATETIME_HELP}.")
    available = StrictBooleanFilter(
        method="filter_available", help_text="true: not-before time has passed and no prerequisite is pending."
    )
    overdue = StrictBooleanFilter(method="filter_overdue", help_text="true: open and past due.")

    class Meta:
        model = Task
        fields: list[str] = []

    def filter_assignee(self, qs: QuerySet[Task], name: str, value: str | int | None) -> QuerySet[Task]:
        if value is None:
            return qs
        if value == "me":
            return qs.filter(assignee=staff(self.request))
        return qs.filter(assignee_id=int(value))

    def filter_pool(self, qs: QuerySet[Task], name: str, value: bool | None) -> QuerySet[Task]:
        if value is None:
            return qs
        if not value:
            return qs.filter(assignee__isnull=False)
        pool = qs.filter(assignee__isnull=True)
        roles = specialist_roles(staff(self.request))
        return pool.filter(role__in=roles) if roles else pool

    def filter_available(self, qs: QuerySet[Task], name: str, value: bool | None) -> QuerySet[Task]:
        if value is None:
            return qs
        available = Q(available_at__lte=timezone.now(), blocked_by=[])
        return qs.filter(available) if value else qs.exclude(available)

    def filter_overdue(self, qs: QuerySet[Task], name: str, value: bool | None) -> QuerySet[Task]:
        if value is None:
            return qs
        overdue = Q(status__in=OPEN_TASK_STATUSES, due_at__lt=timezone.now())
        return qs.filter(overdue) if value else qs.exclude(overdue)


class PatientFilter(django_filters.FilterSet):
    mrn = django_filters.CharFilter(field_name="mrn", help_text="Exact medical record number.")
    site = IdFilter(field_name="site_id")

    class Meta:
        model = Patient
        fields: list[str] = []


class EnrollmentFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    status = django_filters.MultipleChoiceFilter(choices=EnrollmentStatus.choices, distinct=False)  # as above
    pathway = django_filters.CharFilter(field_name="pathway_slug")

    class Meta:
        model = Enrollment
        fields: list[str] = []


class NotificationFilter(django_filters.FilterSet):
    unread = StrictBooleanFilter(field_name="read_at", lookup_expr="isnull", help_text="true: not yet read.")

    class Meta:
        model = Notification
        fields: list[str] = []


class PathwayFilter(django_filters.FilterSet):
    slug = django_filters.CharFilter(field_name="slug")
    status = django_filters.ChoiceFilter(choices=TemplateStatus.choices)

    class Meta:
        model = PathwayTemplate
        fields: list[str] = []
