"""Finding the API token a request presents (pathways.api.authentication)."""

from __future__ import annotations

import hashlib

from pathways.models import ApiToken


def api_token_for_key(key: str) -> ApiToken | None:
    """The token whose key is `key` (looked up by its SHA-256, with its user), or None. Whether it is still
    valid (revoked_at, expires_at, user.is_active) is the caller's to check."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return ApiToken.objects.select_related("user").filter(key_hash=digest).first()
