"""The claim map and the sign-on service without a browser: roles and sites from the mapping file, refreshed at
every sign-on, refusals with their reason, care teams untouched, claims never in the audit trail; the callback
answers a bad or missing state with the refusal page and an audit event, never a 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from pathways.choices import Role
from pathways.domain.claim_map import ClaimMap
from pathways.errors import InvalidInput
from pathways.models import AuditEvent, CareTeamMember, Site, User
from pathways.services.sign_on import sign_on_user_sync
from tests.oidc.conftest import CLAIM_MAP

ISSUER = "https://login.hospital.example"

pytestmark = pytest.mark.django_db


def _claims(sub: str = "s-1", username: str = "jdoe", groups: Any = ("cp-coordinators", "cp-site-chi")) -> dict:
    return {"sub": sub, "preferred_username": username, "email": "jdoe@hospital.example", "groups": list(groups)}


@pytest.fixture
def mapped(settings: Any, site: Site) -> Site:
    settings.OIDC_CLAIM_MAP_FILE = str(CLAIM_MAP)
    return site


def test_the_claim_map_unions_the_grants_of_the_listed_groups() -> None:
    claim_map = ClaimMap.from_file(CLAIM_MAP)
    grant = claim_map.grant_for({"groups": ["cp-wound-nursing", "cp-auditors", "cp-site-chi", "unlisted"]})
    assert grant.roles == {Role.WOUND_NURSING, Role.AUDITOR}
    assert grant.sites == {"chi"}
    assert claim_map.grant_for({"groups": "cp-admins"}).roles == {Role.ADMIN}
    assert claim_map.grant_for({}).roles == frozenset()
    assert claim_map.grant_for({"groups": {"not": "a list"}}).roles == frozenset()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"groups": {"g": {"roles": ["surgeon-general"]}}}, "groups.g.roles"),
        ({"groups": {"g": {"roles": "coordinator"}}}, "groups.g.roles"),
        ({"groups": {"g": {"rolez": ["coordinator"]}}}, "groups.g"),
        ({"claim": "", "groups": {}}, "claim"),
        ({"grups": {}}, "keys"),
    ],
)
def test_a_bad_claim_map_is_refused_naming_the_field(data: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        ClaimMap.from_data(data)
    assert field in exc.value.fields


def test_a_missing_claim_map_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot be read"):
        ClaimMap.from_file(tmp_path / "absent.yaml")


def test_first_sign_on_creates_the_user_with_mapped_roles_and_sites_and_no_password(mapped: Site) -> None:
    outcome = sign_on_user_sync(issuer=ISSUER, claims=_claims())
    assert outcome.refusal == ""
    user = User.objects.get(username="jdoe")
    assert outcome.user == user
    assert user.roles == [Role.COORDINATOR]
    assert list(user.sites.all()) == [mapped]
    assert not user.has_usable_password()
    assert not user.is_staff


def test_roles_are_rewritten_at_every_sign_on_and_care_teams_are_left_alone(
    mapped: Site, coordinator: User, pathway: Any
) -> None:
    from pathways.services.enrollment import care_team_add, enrollment_apply
    from tests.factories import PatientFactory

    user = sign_on_user_sync(issuer=ISSUER, claims=_claims(groups=["cp-wound-nursing", "cp-site-chi"])).user
    assert user is not None
    patient = PatientFactory(site=mapped)
    enrollment = enrollment_apply(patient_id=patient.pk, pathway_slug="calciphylaxis", actor=coordinator)
    care_team_add(enrollment_id=enrollment.pk, user=user, role=Role.WOUND_NURSING, actor=coordinator)

    again = sign_on_user_sync(issuer=ISSUER, claims=_claims(groups=["cp-auditors", "cp-admins", "cp-site-chi"]))
    user.refresh_from_db()
    assert again.user == user
    assert user.roles == [Role.ADMIN, Role.AUDITOR]
    assert user.is_staff and user.is_superuser
    assert CareTeamMember.objects.filter(user=user, enrollment=enrollment).exists()


def test_no_mapped_role_is_refused_and_takes_away_the_old_roles(mapped: Site) -> None:
    sign_on_user_sync(issuer=ISSUER, claims=_claims())
    outcome = sign_on_user_sync(issuer=ISSUER, claims=_claims(groups=["hospital-staff"]))
    assert outcome.refusal == "no_role"
    assert User.objects.get(username="jdoe").roles == []
    event = AuditEvent.objects.filter(subtype="login.oidc").latest("pk")
    assert (event.outcome, event.outcome_desc, event.http_status) == ("8", "no_role", 403)


def test_a_role_without_a_site_is_refused(mapped: Site) -> None:
    assert sign_on_user_sync(issuer=ISSUER, claims=_claims(groups=["cp-coordinators"])).refusal == "no_site"


def test_a_user_deactivated_in_carepath_gets_no_session(mapped: Site) -> None:
    user = sign_on_user_sync(issuer=ISSUER, claims=_claims()).user
    assert user is not None
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert sign_on_user_sync(issuer=ISSUER, claims=_claims()).refusal == "deactivated"


def test_a_local_account_is_never_taken_over_by_a_provider_identity_with_its_username(
    mapped: Site, coordinator: User
) -> None:
    outcome = sign_on_user_sync(issuer=ISSUER, claims=_claims(username=coordinator.username))
    assert (outcome.user, outcome.refusal) == (None, "username_taken")


def test_the_identity_is_the_subject_not_the_username(mapped: Site) -> None:
    first = sign_on_user_sync(issuer=ISSUER, claims=_claims(username="jdoe")).user
    renamed = sign_on_user_sync(issuer=ISSUER, claims=_claims(username="jane.doe")).user
    assert first == renamed


def test_claims_never_reach_the_audit_trail(mapped: Site) -> None:
    sign_on_user_sync(issuer=ISSUER, claims=_claims())
    sign_on_user_sync(issuer=ISSUER, claims=_claims(sub="s-2", username="other", groups=["hospital-staff"]))
    for event in AuditEvent.objects.all():
        text = " ".join(str(v) for v in event.__dict__.values())
        for secret in ("hospital.example", "cp-coordinators", "hospital-staff", "s-1", "s-2"):
            assert secret not in text


@pytest.fixture
def oidc_settings(settings: Any) -> Any:
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "carepath"
    settings.OIDC_OP_ISSUER = ISSUER
    settings.OIDC_DISCOVERY_URL = ""
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{ISSUER}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{ISSUER}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{ISSUER}/jwks"
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "pathways.web.sign_on.CarepathOIDCBackend"]
    return settings


def test_the_sign_on_start_sends_state_nonce_and_a_pkce_challenge(oidc_settings: Any, client: Client) -> None:
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{ISSUER}/auth?")
    for param in ("state=", "nonce=", "code_challenge=", "code_challenge_method=S256", "response_type=code"):
        assert param in location


def test_a_callback_with_an_unknown_state_is_refused_audited_and_not_a_5xx(oidc_settings: Any, client: Client) -> None:
    client.get("/oidc/authenticate/")  # a real state in the session, but not this one
    response = client.get("/oidc/callback/", {"code": "c", "state": "forged"})
    assert response.status_code == 401
    assert b'data-reason="invalid_token"' in response.content
    event = AuditEvent.objects.filter(subtype="login.oidc").latest("pk")
    assert event.outcome == "8" and event.outcome_desc.startswith("invalid_token")


def test_a_callback_reporting_the_providers_error_shows_the_page(oidc_settings: Any, client: Client) -> None:
    response = client.get("/oidc/callback/", {"error": "access_denied", "state": "x"})
    assert response.status_code == 401
    assert AuditEvent.objects.filter(subtype="login.oidc", outcome_desc="provider_error").exists()


def test_an_unreachable_provider_is_a_page_not_a_5xx(settings: Any, client: Client) -> None:
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "carepath"
    settings.OIDC_OP_ISSUER = "http://127.0.0.1:9"
    settings.OIDC_DISCOVERY_URL = "http://127.0.0.1:9/.well-known/openid-configuration"
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 401
    assert b'data-reason="provider_error"' in response.content


def test_sign_on_urls_are_404_when_no_provider_is_configured(client: Client) -> None:
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/").status_code == 404


def test_the_login_page_offers_the_provider_and_can_hide_local_passwords(oidc_settings: Any, client: Client) -> None:
    oidc_settings.OIDC_PROVIDER_NAME = "Mercy Health"
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Mercy Health" in page and 'id="login-form"' in page
    oidc_settings.LOCAL_LOGIN_ENABLED = False
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Mercy Health" in page and 'id="login-form"' not in page
    assert client.post("/accounts/login/", {"username": "x", "password": "y"}).status_code == 403


def test_refused_sign_ons_never_lock_out_sign_on_from_the_same_address(oidc_settings: Any, rf: Any) -> None:
    from axes.handlers.proxy import AxesProxyHandler
    from axes.models import AccessAttempt
    from django.contrib.auth import authenticate
    from django.contrib.sessions.backends.db import SessionStore

    # The callback's authenticate() call, failing as a refused or tampered sign-on does, more often than
    # LOGIN_MAX_FAILURES allows, from one (NAT) address.
    for _ in range(oidc_settings.AXES_FAILURE_LIMIT + 2):
        request = rf.get("/oidc/callback/", REMOTE_ADDR="10.0.0.7")
        request.session = SessionStore()
        assert authenticate(request=request, nonce="n", code_verifier="v") is None
    assert not AccessAttempt.objects.exists()
    request = rf.get("/oidc/callback/", REMOTE_ADDR="10.0.0.7")
    assert AxesProxyHandler.is_allowed(request, {"username": None, "nonce": "n", "code_verifier": "v"})
