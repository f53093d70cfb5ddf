"""POST /api/v1/auth/token/: exchange a username and password for an API token.

Two layers: DRF's per-address rate (cheap, in the cache; the address is client_address, so a rotated
X-Forwarded-For does not dodge it) and django-axes' lockout per (username, address) in pathways.services.auth."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from pathways.api.base import StrictQueryParamsMixin
from pathways.api.serializers import TokenRequestSerializer, TokenResponseSerializer
from pathways.services.auth import auth_token_obtain


class LoginRateThrottle(AnonRateThrottle):
    scope = "login"


class TokenView(StrictQueryParamsMixin, APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        """Returns {"token": ...}; send it as `Authorization: Token <token>`. Repeated failures lock the
        username at the client's address for a while: 429 with Retry-After."""
        serializer = TokenRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        token = auth_token_obtain(
            request=request._request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        return Response({"token": token})
