"""The filter backend (its own module: DRF imports the default filter backends while loading its generic views)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework.request import Request


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when a request carries none of the filterset's parameters.

    Without parameters every filter is a no-op, yet building and validating the filterset's form cost about
    3 ms of every unfiltered list page, such as the queue (docs/benchmarks.md, "Pages").

    The view is told the filters' cleaned values (`view.filter_values`, a dict; empty when no filter applies):
    a compiled page (pathways.api.compiled) is not kept when a client gave a date or a time."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        view.filter_values = {}
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not set(request.query_params) & set(filterset_class.base_filters):
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid() and self.raise_exception:
            raise translate_validation(filterset.errors)
        view.filter_values = dict(filterset.form.cleaned_data)
        return filterset.qs
