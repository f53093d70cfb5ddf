"""/api/v1/service-accounts/ and /api/v1/api-tokens/: an admin's management of non-person accounts and API
tokens (issue 18; README, "Issuing a token to a lab interface"). The key is in the answer to an issue or a
rotation only; Carepath keeps its hash. A scoped (service) token can never call these: they name no scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from pathways.api.base import ScopedViewSet, StrictSerializer, staff, validated_body
from pathways.choices import Role, TokenScope
from pathways.errors import InvalidInput, NotPermitted
from pathways.models import ApiToken, User
from pathways.selectors.access import can_manage_api_tokens, scope_api_tokens, scope_service_accounts
from pathways.services.api_tokens import api_token_issue, api_token_revoke, api_token_rotate, service_account_create


class ApiTokenSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "user", "username", "name", "prefix", "scopes", "created_at", "expires_at", "revoked_at"]
        read_only_fields = fields


class IssuedApiTokenSerializer(ApiTokenSerializer):
    """A token as issued: with its key, shown this once."""

    key = serializers.CharField(read_only=True)

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiTokenIssueSerializer(StrictSerializer):
    user = serializers.IntegerField(min_value=1, help_text="the service account's user id")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=TokenScope.choices), allow_empty=False)
    days = serializers.IntegerField(min_value=1, max_value=36_500, required=False, help_text="lifetime in days")
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)


class ApiTokenRotateSerializer(StrictSerializer):
    days = serializers.IntegerField(min_value=1, max_value=36_500, required=False, help_text="lifetime in days")


class ServiceAccountCreateSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), allow_empty=False)
    sites = serializers.ListField(child=serializers.SlugField(max_length=32), allow_empty=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ServiceAccountSerializer(serializers.ModelSerializer):
    sites: Any = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "roles", "sites"]
        read_only_fields = fields


def _admin(request: Request) -> User:
    user = staff(request)
    if not can_manage_api_tokens(user):
        raise NotPermitted("only an admin manages service accounts and API tokens")
    return user


def _issued(token: ApiToken, key: str) -> dict[str, Any]:
    data = dict(ApiTokenSerializer(token).data)
    data["key"] = key
    return data


def _lifetime(days: int | None) -> dt.timedelta | None:
    return dt.timedelta(days=days) if days else None


class ServiceAccountViewSet(mixins.ListModelMixin, ScopedViewSet):
    """List and create non-person accounts (admins only)."""

    queryset = User.objects.none()
    serializer_class = ServiceAccountSerializer

    def get_queryset(self) -> QuerySet[User]:
        _admin(self.request)
        return scope_service_accounts(staff(self.request)).order_by("username", "pk")

    @extend_schema(request=ServiceAccountCreateSerializer, responses={201: ServiceAccountSerializer})
    def create(self, request: Request) -> Response:
        data = validated_body(ServiceAccountCreateSerializer, request)
        actor = _admin(request)
        user = service_account_create(
            username=data["username"],
            roles=data["roles"],
            site_codes=data["sites"],
            description=data.get("description", ""),
            actor=actor,
        )
        return Response(ServiceAccountSerializer(user).data, status=status.HTTP_201_CREATED)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """List, issue, rotate and revoke API tokens (admins only). Keys appear only in issue and rotate answers.
    The body is checked first, as on every POST route: a bad body is a 400/415 whoever sends it."""

    queryset = ApiToken.objects.none()
    serializer_class = ApiTokenSerializer

    def get_queryset(self) -> QuerySet[ApiToken]:
        _admin(self.request)
        return scope_api_tokens(staff(self.request)).order_by("-created_at", "-pk")

    @extend_schema(request=ApiTokenIssueSerializer, responses={201: IssuedApiTokenSerializer})
    def create(self, request: Request) -> Response:
        data = validated_body(ApiTokenIssueSerializer, request)
        actor = _admin(request)
        user = User.objects.filter(pk=data["user"], service_account__isnull=False).first()
        if user is None:
            raise InvalidInput("no such service account", fields={"user": ["not a service account"]})
        token, key = api_token_issue(
            user=user,
            scopes=data["scopes"],
            name=data.get("name", ""),
            lifetime=_lifetime(data.get("days")),
            actor=actor,
        )
        return Response(_issued(token, key), status=status.HTTP_201_CREATED)

    @extend_schema(request=ApiTokenRotateSerializer, responses={201: IssuedApiTokenSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str) -> Response:
        data = validated_body(ApiTokenRotateSerializer, request)
        token = self.get_object()
        new, key = api_token_rotate(token_id=token.pk, lifetime=_lifetime(data.get("days")), actor=_admin(request))
        return Response(_issued(new, key), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        validated_body(StrictSerializer, request)
        token = self.get_object()
        token = api_token_revoke(token_id=token.pk, actor=_admin(request))
        return Response(ApiTokenSerializer(token).data)


__all__ = ["ApiTokenViewSet", "ServiceAccountViewSet"]
