"""The OpenAPI schema generator: drf-spectacular's, made to describe what the views answer (issue 12, section 9).

- Every operation documents the error answers it can give, in the one error shape (pathways.api.exceptions).
- Only `list` actions are paginated and filtered; detail actions that answer a list (care-team, schedule,
  events) answer a bare array and accept only their own parameters."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

# Every status the API answers besides success, in the error shape. 405 and 406 come from DRF's dispatch
# (method, Accept header), 413 and 415 from the body parsers, 429 from the login throttle.
ERROR_STATUSES = ("400", "401", "403", "404", "405", "406", "409", "413", "415", "429")


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, not_found, stale_version.")
    message = serializers.CharField()
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Per-field messages; nested fields use dotted names ("values.0.value").',
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class CarepathAutoSchema(AutoSchema):
    def _lists_with_pages(self) -> bool:
        action = getattr(self.view, "action", None)
        return action is None or action == "list"

    def get_filter_backends(self) -> list[Any]:
        return super().get_filter_backends() if self._lists_with_pages() else []

    def _get_pagination_parameters(self) -> list[Any]:
        return super()._get_pagination_parameters() if self._lists_with_pages() else []

    def _get_paginator(self) -> Any:
        return super()._get_paginator() if self._lists_with_pages() else None

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error = self._get_response_for_code(ErrorSerializer, "400", direction=direction)
        for status in ERROR_STATUSES:
            responses.setdefault(status, {**error, "description": "An error in the one error shape."})
        return responses
