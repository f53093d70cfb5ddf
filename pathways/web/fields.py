"""Form fields for the pages, over the same strict readers as the API (pathways/domain/units.py `to_int`,
pathways/domain/instants.py): a value the API refuses with a 400 is a form error here too, never a 500 from a
number or a date the database cannot hold."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from pathways.domain import instants, units
from pathways.errors import InvalidInput


def _error(exc: InvalidInput) -> forms.ValidationError:
    messages = [m for ms in exc.fields.values() for m in ms] or [exc.message]
    return forms.ValidationError(messages)


class StrictIntegerField(forms.IntegerField):
    """A whole number in ASCII digits, between min_value (default 1) and max_value (default the largest id)."""

    def __init__(self, *, min_value: int = 1, max_value: int = units.MAX_INTEGER, **kwargs: Any) -> None:
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)
        self.bounds = (min_value, max_value)

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        try:
            minimum, maximum = self.bounds
            return units.to_int(
                str(value).strip(), field_name=str(self.label or "value"), minimum=minimum, maximum=maximum
            )
        except InvalidInput as exc:
            raise _error(exc) from None


class BoundedDateField(forms.DateField):
    """A YYYY-MM-DD date from 1900-01-01 to before 3000-01-01 (instants.parse_date)."""

    def to_python(self, value: Any) -> dt.date | None:
        if value in self.empty_values:
            return None
        try:
            return instants.parse_date(value, field_name="date")
        except InvalidInput as exc:
            raise _error(exc) from None


class BoundedDateTimeField(forms.DateTimeField):
    """Django's date-time field (a datetime-local input, read in the current time zone) within the service-wide
    bounds, so a year-1 or year-9999 value is a form error rather than an overflow in a query."""

    def to_python(self, value: Any) -> dt.datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
            instants.check_datetime_bounds(aware, field_name="date-time")
        except InvalidInput as exc:
            raise _error(exc) from None
        return moment
