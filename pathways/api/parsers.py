"""The JSON body parser: DRF's, with a nesting limit (docs/api.md, "Limits").

Python's json module recurses once per level, so a body nested 1,000 levels deep raised RecursionError (a 500)
before any view ran, even on the anonymous token endpoint (issue 12). No Carepath body nests deeper than a few
levels (a panel's `values` list of objects is three)."""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 16


class RequestTooLarge(APIException):
    """A body over settings.DATA_UPLOAD_MAX_MEMORY_SIZE: 413 in the API's error shape."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request body too large"
    default_code = "too_large"


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0, [] or {} is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONParser(JSONParser):
    """JSON bodies nested at most MAX_JSON_DEPTH levels; deeper ones (or undecodable ones) are a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        # DRF hands JSON parsers request.body, which Django has already checked against
        # DATA_UPLOAD_MAX_MEMORY_SIZE (RequestDataTooBig -> 413 in pathways.api.exceptions).
        raw = stream.read()
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_constant=self._reject_constant)
        except RecursionError:
            raise ParseError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
        return data

    @staticmethod
    def _reject_constant(name: str) -> Any:
        # NaN and Infinity are not JSON (RFC 8259); Python's json reads them unless told otherwise.
        raise ValueError(f"{name} is not a JSON value")
