"""The OpenAPI schema is part of the contract: it validates, and every documented operation answers."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from pathways.services.api_tokens import api_token_issue
from tests.api.conftest import World, client_for, notify
from tests.photos.conftest import photo_on


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.postgres
def test_schema_is_valid_openapi_3(db: None, schema: dict) -> None:
    validate(schema)
    assert schema["openapi"].startswith("3.")


@pytest.mark.postgres
def test_every_documented_operation_answers_without_a_server_error(world: World, schema: dict) -> None:
    admin = world.users["admin"]
    ids = {
        "enrollments": world.enrollment.pk,
        "tasks": world.task.pk,
        "patients": world.patient.pk,
        "sites": world.site.pk,
        "pathways": world.pathway.pk,
        "notifications": notify(admin, world.task).pk,
        "api-tokens": api_token_issue(user=admin)[0].pk,
        "wound-photos": photo_on(world.enrollment, admin).pk,
    }
    client = client_for(admin)
    checked = 0
    for path, operations in schema["paths"].items():
        collection = path.removeprefix("/api/v1/").split("/")[0]
        concrete = re.sub(r"\{id\}", str(ids.get(collection, 1)), path)
        concrete = re.sub(r"\{member_id\}", str(world.member.pk), concrete)
        assert "{" not in concrete, f"unfilled parameter in {path}"
        for method in operations:
            if method not in {"get", "post"}:
                continue
            # An empty POST must be refused cleanly (400/401/409), never crash; GETs must succeed.
            response = client.generic(method.upper(), concrete, data="{}", content_type="application/json")
            assert response.status_code < 500, (method, concrete, response.content[:300])
            if method == "get":
                assert response.status_code == 200, (concrete, response.content[:300])
            checked += 1
    assert checked >= 30


@pytest.mark.postgres
def test_swagger_ui_is_served_from_local_static_files_not_a_cdn(client, db: None) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    script = re.search(r'src="([^"]*swagger-ui-bundle[^"]*)"', html)
    assert script and script.group(1).startswith("/static/"), html[:500]
    assert client.get(script.group(1)).status_code == 200
