"""Reads compiled once (pathways.selectors.kept, issue 15): the same instances the queryset gives, fresh values."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pathways.models import ApiToken, User
from pathways.selectors.api_tokens import api_token_for_key
from pathways.selectors.kept import LRUCache, keep
from pathways.services.api_tokens import api_token_issue, api_token_revoke

pytestmark = pytest.mark.django_db


def test_a_kept_read_returns_what_the_queryset_returns_with_its_related_row(coordinator: User) -> None:
    token, _key = api_token_issue(user=coordinator, name="kept")
    read = keep(ApiToken.objects.select_related("user").filter(name="<marker>")[:1], "<marker>")
    with CaptureQueriesContext(connection) as queries:
        found = read.first("kept")
        assert found.user.username == coordinator.username and found.user.roles == coordinator.roles
    assert len(queries) == 1  # the user came with the token
    expected = ApiToken.objects.get(pk=token.pk)
    assert [getattr(found, f.attname) for f in ApiToken._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in ApiToken._meta.concrete_fields
    ]
    assert read.first("no such name") is None


def test_the_token_lookup_sees_a_revocation_at_once(coordinator: User) -> None:
    token, key = api_token_issue(user=coordinator, name="kept")
    assert api_token_for_key(key).revoked_at is None
    api_token_revoke(token_id=token.pk, actor=None)
    assert api_token_for_key(key).revoked_at is not None
    assert api_token_for_key(key + "x") is None


def test_the_marker_is_replaced_wherever_it_stands(coordinator: User) -> None:
    with pytest.raises(ValueError, match="not among the parameters"):
        keep(ApiToken.objects.filter(name="a"), "<marker>")
    api_token_issue(user=coordinator, name="same")
    read = keep(ApiToken.objects.filter(name="<marker>").exclude(prefix="<marker>"), "<marker>")
    assert len(read.at) == 2
    assert read.first("same").name == "same"


def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
