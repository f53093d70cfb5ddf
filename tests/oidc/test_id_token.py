"""The ID token checks, unit-level through the library's verifier (CarepathOIDCBackend.verify_token) with a
key pair made here: a good token passes; a bad signature, another audience, another issuer, an expired token,
an unsigned one, an HMAC one keyed with the public key, and a replayed nonce are each refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import SuspiciousOperation

from pathways.web.sign_on import CarepathOIDCBackend

ISSUER = "https://login.hospital.example/realms/staff"
CLIENT_ID = "carepath"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


PROVIDER_KEY = _key()
OTHER_KEY = _key()
PUBLIC_PEM = (
    PROVIDER_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.fixture
def backend(settings: Any) -> CarepathOIDCBackend:
    settings.OIDC_ENABLED = True
    settings.OIDC_OP_ISSUER = ISSUER
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_RP_IDP_SIGN_KEY = PUBLIC_PEM
    return CarepathOIDCBackend()


def _hmac_token_keyed_with_public_key() -> str:
    """The algorithm-confusion forgery, built by hand (PyJWT refuses to use a PEM key as an HMAC secret)."""
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": "n-1"}

    def part(data: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(PUBLIC_PEM.encode(), signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature.rstrip(b"=")).decode()


def _token(key: Any = PROVIDER_KEY, algorithm: str = "RS256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": "n-1"}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


def test_a_well_formed_token_from_the_provider_is_accepted(backend: CarepathOIDCBackend) -> None:
    assert backend.verify_token(_token(), nonce="n-1")["sub"] == "u-1"


def test_an_audience_list_that_names_carepath_is_accepted(backend: CarepathOIDCBackend) -> None:
    assert backend.verify_token(_token(aud=["ehr", CLIENT_ID]), nonce="n-1")["sub"] == "u-1"


@pytest.mark.parametrize(
    ("case", "token"),
    [
        ("bad signature", lambda: _token(key=OTHER_KEY)),
        ("wrong audience", lambda: _token(aud="another-app")),
        ("wrong issuer", lambda: _token(iss="https://evil.example")),
        ("expired", lambda: _token(iat=int(time.time()) - 3600, exp=int(time.time()) - 600)),
        ("no expiry", lambda: _token(exp=None)),
        ("no audience", lambda: _token(aud=None)),
        ("unsigned (alg none)", lambda: _token(key=None, algorithm="none")),
        ("HMAC keyed with the public key", _hmac_token_keyed_with_public_key),
        ("not a JWT", lambda: "not.a.jwt"),
    ],
)
def test_a_tampered_id_token_is_refused(backend: CarepathOIDCBackend, case: str, token: Any) -> None:
    with pytest.raises(SuspiciousOperation):
        backend.verify_token(token(), nonce="n-1")


def test_a_token_for_another_login_attempt_is_refused_by_its_nonce(backend: CarepathOIDCBackend) -> None:
    with pytest.raises(SuspiciousOperation, match="Nonce"):
        backend.verify_token(_token(nonce="someone-elses"), nonce="n-1")


def test_the_clock_skew_allowance_is_bounded(backend: CarepathOIDCBackend, settings: Any) -> None:
    settings.OIDC_CLOCK_SKEW_SECONDS = 60
    just_expired = _token(exp=int(time.time()) - 30)
    assert backend.verify_token(just_expired, nonce="n-1")["sub"] == "u-1"
    with pytest.raises(SuspiciousOperation):
        backend.verify_token(_token(exp=int(time.time()) - 120), nonce="n-1")
