"""`Authorization: Token <key>` for the REST API and the FHIR interface: hashed, expiring, revocable, scoped
tokens (pathways.services.api_tokens). An unknown, revoked or expired key, or a deactivated account, is a
401; an operation outside the token's scopes is a 403 (pathways.api.permissions.IsActiveStaff)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from pathways.models import ApiToken
from pathways.selectors.api_tokens import api_token_for_key


class ApiTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = api_token_for_key(key)
        if token is None:
            raise AuthenticationFailed("invalid token")
        if token.revoked_at is not None:
            raise AuthenticationFailed("token revoked")
        if token.expires_at <= timezone.now():
            raise AuthenticationFailed("token expired")
        if not token.user.is_active:
            raise AuthenticationFailed("account deactivated")
        return token.user, token
