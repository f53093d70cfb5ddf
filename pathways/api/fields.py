"""Serializer and filter fields that read input through the one parser of each kind of value
(pathways.domain.units for numbers, pathways.domain.instants for dates and datetimes).

Every date, datetime and integer field of the API's input serializers and filtersets is one of these, so a body
and a query parameter cannot read the same text differently (issue 12, section 2)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pathways.domain import instants, units
from pathways.errors import InvalidInput


def _messages(exc: InvalidInput) -> list[str]:
    return [message for messages in exc.fields.values() for message in messages] or [exc.message]


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time with a UTC offset within the service-wide bounds; a naive value or a bare date is
    a 400 naming the field (DRF's DateTimeField would read it as UTC)."""

    def to_internal_value(self, value: Any) -> dt.datetime:
        try:
            return instants.parse_aware_datetime(value, field_name=self.field_name or "value")
        except InvalidInput as exc:
            raise serializers.ValidationError(_messages(exc)) from None


class BoundedDateField(serializers.DateField):
    """A YYYY-MM-DD date within the service-wide bounds (a field's own validator narrows them further)."""

    def to_internal_value(self, value: Any) -> dt.date:
        try:
            return instants.parse_date(value, field_name=self.field_name or "value")
        except InvalidInput as exc:
            raise serializers.ValidationError(_messages(exc)) from None


class StrictIntegerField(serializers.IntegerField):
    """A whole number in ASCII digits (JSON integer or digit string) between min_value and max_value."""

    def to_internal_value(self, value: Any) -> int:
        minimum = self.min_value if self.min_value is not None else -units.MAX_INTEGER
        maximum = self.max_value if self.max_value is not None else units.MAX_INTEGER
        try:
            return units.to_int(
                value, field_name=self.field_name or "value", minimum=int(minimum), maximum=int(maximum)
            )
        except InvalidInput as exc:
            raise serializers.ValidationError(_messages(exc)) from None


_LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


@extend_schema_field({"type": "string", "pattern": _LOCAL_TIME_PATTERN, "example": "06:30:00"})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time at the patient's site, "HH:MM" or "HH:MM:SS" (no offset: the site's timezone applies).

    OpenAPI's `format: time` is RFC 3339's full-time, which requires an offset, so the schema gives a pattern."""

    def to_internal_value(self, value: Any) -> dt.time:
        if not isinstance(value, str) or not re.fullmatch(_LOCAL_TIME_PATTERN, value, re.ASCII):
            raise serializers.ValidationError('must be a local time "HH:MM" or "HH:MM:SS"')
        return dt.time.fromisoformat(value)


def strict_id(value: Any, *, field_name: str) -> int:
    """An object id (1..bigint max) through the one integer reader; InvalidInput otherwise."""
    return units.to_int(value, field_name=field_name, minimum=1)


# --- query filters ---------------------------------------------------------------------------------------


class AwareDateTimeFormField(forms.Field):
    def to_python(self, value: Any) -> dt.datetime | None:
        if value in (None, ""):
            return None
        try:
            return instants.parse_aware_datetime(value, field_name="value")
        except InvalidInput as exc:
            raise forms.ValidationError(_messages(exc)) from None


class AwareDateTimeFilter(django_filters.Filter):
    """A date-time query filter read like every body date-time (offset required, bounded)."""

    field_class = AwareDateTimeFormField


class IdFormField(forms.Field):
    def to_python(self, value: Any) -> int | None:
        if value in (None, ""):
            return None
        try:
            return strict_id(value, field_name="value")
        except InvalidInput as exc:
            raise forms.ValidationError(_messages(exc)) from None


class IdFilter(django_filters.Filter):
    """An object id query filter (ASCII digits, 1..bigint max)."""

    field_class = IdFormField
