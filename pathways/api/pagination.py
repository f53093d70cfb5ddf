"""Pagination (its own module: DRF imports the default pagination class while loading its generic views)."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

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
            value = int(raw)
        except ValueError:
            raise ValidationError({name: ["must be an integer"]}) from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise ValidationError({name: [f"must be {bound}"]})
        return value

    def get_limit(self, request: Request) -> int | None:
        limit = self._parse(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        return self._parse(request, self.offset_query_param, minimum=0, maximum=None) or 0
