"""Liveness/readiness: is the database reachable, is the broker reachable."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

from carepath.celery import app as celery_app


def check_database() -> dict[str, object]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not ok"; the type is the useful detail
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_broker() -> dict[str, object]:
    url = celery_app.conf.broker_url
    transport = url.split("://", 1)[0]
    started = time.perf_counter()
    try:
        with Connection(url, transport_options=celery_app.conf.broker_transport_options, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return {"ok": False, "transport": transport, "error": type(exc).__name__}
    return {"ok": True, "transport": transport, "ms": round((time.perf_counter() - started) * 1000, 1)}


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and broker answer, 503 otherwise; no authentication (for load balancers)."""
    checks = {"database": check_database(), "broker": check_broker()}
    ok = all(bool(c["ok"]) for c in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
