"""Which real services the test suite can use: PostgreSQL and Redis, probed once at start-up.

Locally, a missing service makes its tests skip with the reason; with CI=true it stops the run.
"""

from __future__ import annotations

import os
from typing import Any

import environ

DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/carepath"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def probe_postgres(url: str) -> str | None:
    """None when PostgreSQL answers at `url`, else why not."""
    import psycopg

    config = environ.Env.db_url_config(url)
    try:
        with psycopg.connect(
            host=config.get("HOST") or None,
            port=config.get("PORT") or None,
            user=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=3,
        ):
            return None
    except Exception as exc:  # the reason is reported, never hidden
        return f"PostgreSQL not reachable at {config.get('HOST')}:{config.get('PORT') or 5432} ({type(exc).__name__})"


def probe_redis(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        return None
    except Exception as exc:
        return f"Redis not reachable at {url.split('@')[-1]} ({type(exc).__name__})"


def choose_services() -> dict[str, Any]:
    """Settings overrides for the test run, plus SERVICES_UNAVAILABLE {service: reason}."""
    env = environ.Env()
    db_url = env.str("TEST_DATABASE_URL", default="")
    if not db_url:
        configured = env.str("DATABASE_URL", default="")
        db_url = configured if configured.startswith("postgres") else DEFAULT_TEST_DATABASE_URL
    redis_url = env.str("TEST_REDIS_URL", default=DEFAULT_TEST_REDIS_URL)
    unavailable: dict[str, str] = {}
    overrides: dict[str, Any] = {}
    reason = probe_postgres(db_url)
    if reason is None:
        overrides["DATABASES"] = {"default": {**environ.Env.db_url_config(db_url), "CONN_MAX_AGE": 0}}
    else:
        unavailable["postgres"] = reason
        overrides["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    reason = probe_redis(redis_url)
    if reason is None:
        overrides["REDIS_URL"] = redis_url
        overrides["CELERY_BROKER_URL"] = redis_url
    else:
        unavailable["redis"] = reason
    if unavailable and in_ci():
        raise SystemExit(
            "CI=true and a required service is missing: "
            + "; ".join(unavailable.values())
            + ". Start it (README, 'Set up') - CI never skips service-backed tests."
        )
    overrides["SERVICES_UNAVAILABLE"] = unavailable
    return overrides
