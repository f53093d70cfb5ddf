"""The filter backend (its own module: DRF imports the default filter backends while loading its generic views)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.request import Request


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when a request carries none of the filterset's parameters.

    Without parameters every filter is a no-op, yet building and validating the filterset's form cost about
    3 ms of every unfiltered list page, such as the queue (docs/benchmarks.md, "Pages")."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not set(request.query_params) & set(filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)
