"""Pagination (its own module: DRF imports the default pagination class while loading its generic views)."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from pathways.domain import units
from pathways.errors import InvalidInput

MAX_PAGE_SIZE = 200


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset paging; a limit above MAX_PAGE_SIZE or a malformed value is a 400, not silently clamped."""

    default_limit = 50
    max_limit = MAX_PAGE_SIZE

    @staticmethod
    def _parse(request: Request, name: str, *, minimum: int, maximum: int | None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            return units.to_int(
                raw, field_name=name, minimum=minimum, maximum=units.MAX_INTEGER if maximum is None else maximum
            )
        except InvalidInput as exc:
            raise ValidationError(exc.fields) from None

    def get_limit(self, request: Request) -> int | None:
        limit = self._parse(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        return self._parse(request, self.offset_query_param, minimum=0, maximum=None) or 0
