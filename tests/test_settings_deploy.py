"""Production settings (issue 12, section 10): secure by default with DEBUG off, plain http for DEBUG and tests."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parent.parent
_CONFIG_VARS = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_COOKIES",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "DJANGO_SETTINGS_MODULE",
)


def _production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARS}
    return {**env, "DJANGO_SETTINGS_MODULE": "carepath.settings", "SECRET_KEY": secrets.token_urlsafe(50), **extra}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_debug_off_and_the_default_settings() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_the_environment_turns_the_redirect_and_hsts_off() -> None:
    env = _production_env(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0")
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout
    assert "security.W008" in result.stderr + result.stdout


def test_the_production_defaults_are_secure_and_the_proxy_header_comes_from_the_environment() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_PROXY_SSL_HEADER)"
    )
    env = _production_env(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    result = _manage("shell", "-c", code, env=env)
    expected = ["True", "31536000", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')"]
    assert result.stdout.splitlines()[-1].split() == expected
    debug = _manage("shell", "-c", code, env={**_production_env(), "DEBUG": "1"})
    assert debug.stdout.splitlines()[-1].split() == ["False", "0", "False", "False", "None"]


def test_a_missing_secret_key_prints_one_clear_line() -> None:
    env = _production_env()
    del env["SECRET_KEY"]
    result = _manage("up", "--prepare-only", env=env)
    assert result.returncode != 0
    assert "KeyError" not in result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SECRET_KEY must be set" in lines[0], result.stderr


@pytest.mark.django_db
@override_settings(
    SECURE_SSL_REDIRECT=True,
    SECURE_HSTS_SECONDS=31_536_000,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_healthz_answers_over_plain_http_and_behind_a_tls_proxy_while_other_pages_redirect() -> None:
    client = Client()
    assert client.get("/healthz").status_code == 200
    behind_proxy = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert behind_proxy.status_code == 200
    assert behind_proxy["Strict-Transport-Security"].startswith("max-age=31536000")
    plain = client.get("/api/v1/tasks/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    assert client.get("/api/v1/tasks/", headers={"X-Forwarded-Proto": "https"}).status_code == 401
