"""Service accounts and API tokens (issue 18): a token's scopes are enforced (403), its account's sites too
(404), expiry and revocation are 401s, rotation replaces the key, keys are stored only as hashes, a person's
token expires too, and every issue/rotation/revocation is audited. Through the REST API, the FHIR interface
and the management command."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from pathways.choices import Role
from pathways.errors import InvalidInput, NotPermitted
from pathways.models import ApiToken, AuditEvent, Enrollment, Patient, Site, User
from pathways.services.api_tokens import api_token_issue, api_token_revoke, api_token_rotate, service_account_create
from pathways.services.enrollment import enrollment_apply
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.postgres


@pytest.fixture
def lab(site: Site) -> User:
    return service_account_create(
        username="svc-lab", roles=[Role.COORDINATOR], site_codes=[site.code], description="lab interface", actor=None
    )


@pytest.fixture
def enrollment(pathway: object, site: Site, coordinator: User) -> Enrollment:
    return enrollment_apply(patient_id=PatientFactory(site=site).pk, pathway_slug="calciphylaxis", actor=coordinator)


@pytest.fixture
def elsewhere(other_site: Site) -> Patient:
    return PatientFactory(site=other_site)


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _observation(enrollment: Enrollment) -> dict:
    return {"enrollment": enrollment.pk, "values": [{"code": "bwat_cua", "value": "24"}]}


def test_a_lab_token_records_observations_and_nothing_else(lab: User, enrollment: Enrollment) -> None:
    _, key = api_token_issue(user=lab, scopes=["observations:write"], actor=None)
    client = _client(key)
    assert client.post("/api/v1/observations/", _observation(enrollment), format="json").status_code == 201
    denied = client.get("/api/v1/tasks/")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"
    assert client.get("/api/v1/observations/").status_code == 403  # write is not read


def test_a_tasks_read_token_cannot_post_observations_through_the_api_or_fhir(lab: User, enrollment: Enrollment) -> None:
    _, key = api_token_issue(user=lab, scopes=["tasks:read"], actor=None)
    client = _client(key)
    assert client.get("/api/v1/tasks/").status_code == 200
    assert client.get("/fhir/R4/Task").status_code == 200
    assert client.post("/api/v1/observations/", _observation(enrollment), format="json").status_code == 403
    fhir = client.post("/fhir/R4/Observation", {"resourceType": "Observation", "status": "final"}, format="json")
    assert fhir.status_code == 403


def test_another_sites_data_is_a_404_for_a_service_token(lab: User, elsewhere: Patient, site: Site) -> None:
    _, key = api_token_issue(user=lab, scopes=["patients:read"], actor=None)
    client = _client(key)
    mine = PatientFactory(site=site)
    assert client.get(f"/api/v1/patients/{mine.pk}/").status_code == 200
    assert client.get(f"/api/v1/patients/{elsewhere.pk}/").status_code == 404
    assert client.get(f"/fhir/R4/Patient/{elsewhere.pk}").status_code == 404


def test_expired_and_revoked_tokens_are_401s(lab: User, enrollment: Enrollment) -> None:
    token, key = api_token_issue(user=lab, scopes=["tasks:read"], lifetime=dt.timedelta(days=7), actor=None)
    client = _client(key)
    assert client.get("/api/v1/tasks/").status_code == 200
    with time_machine.travel(token.expires_at + dt.timedelta(seconds=1)):
        expired = client.get("/api/v1/tasks/")
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "token expired"
    api_token_revoke(token_id=token.pk, actor=None)
    revoked = client.get("/api/v1/tasks/")
    assert (revoked.status_code, revoked.json()["error"]["message"]) == (401, "token revoked")
    assert client.get("/fhir/R4/Task").status_code == 401


def test_rotation_gives_a_new_key_and_retires_the_old_one(lab: User, admin_user: User) -> None:
    old, old_key = api_token_issue(user=lab, scopes=["tasks:read"], name="ehr", actor=admin_user)
    new, new_key = api_token_rotate(token_id=old.pk, actor=admin_user)
    assert (new.name, new.scopes, new.rotated_from) == ("ehr", ["tasks:read"], old)
    assert _client(old_key).get("/api/v1/tasks/").status_code == 401
    assert _client(new_key).get("/api/v1/tasks/").status_code == 200
    with pytest.raises(InvalidInput):
        api_token_rotate(token_id=old.pk, actor=admin_user)
    subtypes = list(AuditEvent.objects.filter(entity_type="apitoken").order_by("pk").values_list("subtype", "actor_id"))
    assert subtypes == [("token.issue", admin_user.pk), ("token.rotate", admin_user.pk)]


def test_keys_are_stored_only_as_hashes(lab: User) -> None:
    token, key = api_token_issue(user=lab, scopes=["tasks:read"], actor=None)
    token.refresh_from_db()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pathways_apitoken WHERE key_hash = %s OR prefix = %s", [key, key])
        assert cursor.fetchone()[0] == 0
    assert not AuditEvent.objects.filter(outcome_desc__contains=key).exists()


def test_a_persons_token_expires_after_the_configured_lifetime(site: Site, settings: object) -> None:
    settings.API_TOKEN_LIFETIME_DAYS = 3  # type: ignore[attr-defined]
    person = UserFactory(username="nurse", roles=[Role.WOUND_NURSING], sites=[site])
    token, key = api_token_issue(user=person)
    assert token.scopes == ["*"]
    assert token.expires_at - token.created_at == dt.timedelta(days=3)
    with time_machine.travel(timezone.now() + dt.timedelta(days=3, seconds=1)):
        assert _client(key).get("/api/v1/tasks/").status_code == 401


def test_only_an_admin_manages_service_accounts_and_their_tokens(lab: User, coordinator: User, site: Site) -> None:
    with pytest.raises(NotPermitted):
        api_token_issue(user=lab, scopes=["tasks:read"], actor=coordinator)
    with pytest.raises(NotPermitted):
        service_account_create(username="svc-x", roles=["coordinator"], site_codes=[site.code], actor=coordinator)
    with pytest.raises(InvalidInput):
        api_token_issue(user=lab, scopes=["tasks:delete"], actor=None)
    with pytest.raises(InvalidInput):
        api_token_issue(user=lab, scopes=["tasks:read"], lifetime=dt.timedelta(days=4000), actor=None)


def test_the_command_creates_an_account_issues_lists_rotates_and_revokes(site: Site) -> None:
    out = StringIO()
    call_command("api_token", "service-account", "svc-ehr", "--role", "auditor", "--site", site.code, stdout=out)
    call_command("api_token", "issue", "svc-ehr", "--scope", "tasks:read", "--days", "30", stdout=out)
    key = out.getvalue().splitlines()[2]
    assert key.startswith("cp_")
    assert _client(key).get("/api/v1/tasks/").status_code == 200
    token = ApiToken.objects.get(user__username="svc-ehr")
    call_command("api_token", "list", "svc-ehr", stdout=out)
    assert f"{token.pk}\tsvc-ehr\t" in out.getvalue()
    call_command("api_token", "revoke", str(token.pk), stdout=out)
    assert _client(key).get("/api/v1/tasks/").status_code == 401
    events = list(
        AuditEvent.objects.filter(actor_username="manage.py").order_by("pk").values_list("subtype", flat=True)
    )
    assert events == ["service_account.create", "token.issue", "token.revoke"]


def test_an_admin_manages_service_accounts_and_tokens_through_the_api(site: Site, admin_user: User) -> None:
    _, admin_key = api_token_issue(user=admin_user)
    admin = _client(admin_key)
    created = admin.post(
        "/api/v1/service-accounts/",
        {"username": "svc-ehr", "roles": ["auditor"], "sites": [site.code], "description": "EHR"},
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["sites"] == [site.code]
    issued = admin.post(
        "/api/v1/api-tokens/", {"user": created.json()["id"], "scopes": ["tasks:read"], "days": 30}, format="json"
    )
    assert issued.status_code == 201
    body = issued.json()
    service = _client(body["key"])
    assert service.get("/api/v1/tasks/").status_code == 200
    # A service token can never manage tokens, whatever its account's roles: these routes name no scope.
    assert service.get("/api/v1/api-tokens/").status_code == 403
    listed = admin.get("/api/v1/api-tokens/").json()["results"]
    assert body["id"] in {t["id"] for t in listed} and all("key" not in t for t in listed)

    rotated = admin.post(f"/api/v1/api-tokens/{body['id']}/rotate/", {}, format="json")
    assert rotated.status_code == 201
    assert service.get("/api/v1/tasks/").status_code == 401
    new_service = _client(rotated.json()["key"])
    assert new_service.get("/api/v1/tasks/").status_code == 200
    revoked = admin.post(f"/api/v1/api-tokens/{rotated.json()['id']}/revoke/", {}, format="json")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert new_service.get("/api/v1/tasks/").status_code == 401


def test_a_non_admin_cannot_manage_tokens_and_bad_input_changes_nothing(
    lab: User, coordinator: User, admin_user: User
) -> None:
    _, key = api_token_issue(user=coordinator)
    assert _client(key).get("/api/v1/api-tokens/").status_code == 403
    assert (
        _client(key).post("/api/v1/api-tokens/", {"user": lab.pk, "scopes": ["tasks:read"]}, format="json").status_code
        == 403
    )
    _, admin_key = api_token_issue(user=admin_user)
    before = ApiToken.objects.count()
    bad_scope = _client(admin_key).post(
        "/api/v1/api-tokens/", {"user": lab.pk, "scopes": ["tasks:delete"]}, format="json"
    )
    assert bad_scope.status_code == 400 and "scopes.0" in bad_scope.json()["error"]["fields"]
    person = _client(admin_key).post("/api/v1/api-tokens/", {"user": coordinator.pk, "scopes": ["*"]}, format="json")
    assert person.status_code == 400 and "user" in person.json()["error"]["fields"]
    assert ApiToken.objects.count() == before


@pytest.mark.parametrize("username", ["bad name!", "", "LAB-CHI", "Lab-Chi"])
def test_a_service_account_name_follows_the_username_rule_and_is_new_regardless_of_case(site: Site, username) -> None:
    service_account_create(username="lab-chi", roles=["auditor"], site_codes=[site.code], actor=None)
    before = User.objects.count()
    with pytest.raises(InvalidInput) as refused:
        service_account_create(username=username, roles=["auditor"], site_codes=[site.code], actor=None)
    assert "username" in refused.value.fields
    assert User.objects.count() == before


def test_an_admin_lists_the_service_accounts_and_only_them(site: Site, admin_user: User, coordinator: User) -> None:
    # The user test found GET /api/v1/service-accounts/ a 405: an admin could create accounts but not list them.
    service_account_create(username="svc-ehr", roles=["auditor"], site_codes=[site.code], actor=None)
    client = APIClient()
    client.force_authenticate(admin_user)
    listed = client.get("/api/v1/service-accounts/")
    assert listed.status_code == 200
    assert [(row["username"], row["sites"]) for row in listed.json()["results"]] == [("svc-ehr", [site.code])]
    other = APIClient()
    other.force_authenticate(coordinator)
    assert other.get("/api/v1/service-accounts/").status_code == 403
