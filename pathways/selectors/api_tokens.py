"""Finding the API token a request presents (pathways.api.authentication)."""

from __future__ import annotations

import hashlib

from django.db import connection

from pathways.models import ApiToken
from pathways.selectors.kept import KeptModelRead, keep

# Stands for the key's hash while the lookup is compiled; no SHA-256 hex digest can equal it.
_MARKER = "<key_hash>"
_lookups: dict[tuple[str, str], KeptModelRead] = {}


def api_token_for_key(key: str) -> ApiToken | None:
    """The token whose key is `key` (looked up by its SHA-256, with its user), or None. Whether it is still
    valid (revoked_at, expires_at, user.is_active) is the caller's to check.

    Every authenticated API request runs this: its statement is compiled once per process and database
    (pathways.selectors.kept), which spares the ORM's compile of a two-table query on each request (issue 15)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    where = (connection.alias, connection.vendor)
    lookup = _lookups.get(where)
    if lookup is None:
        lookup = keep(ApiToken.objects.select_related("user").filter(key_hash=_MARKER)[:1], _MARKER)
        _lookups[where] = lookup
    token: ApiToken | None = lookup.first(digest)
    return token
