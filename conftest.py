"""Suite-wide pytest hooks: report which real services are in use and skip (or, in CI, fail) without them."""

from __future__ import annotations

import pytest
from django.conf import settings

SERVICE_MARKERS = {"postgres": "postgres", "redis": "redis", "celery": "redis"}


def pytest_report_header(config: pytest.Config) -> list[str]:
    db = settings.DATABASES["default"]
    lines = [
        f"carepath: database {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST', '')} {db['NAME']}",
        f"carepath: broker {settings.CELERY_BROKER_URL.split('@')[-1]}",
    ]
    for service, reason in getattr(settings, "SERVICES_UNAVAILABLE", {}).items():
        lines.append(f"carepath: {service} unavailable, its tests will be skipped: {reason}")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unavailable: dict[str, str] = getattr(settings, "SERVICES_UNAVAILABLE", {})
    for item in items:
        for marker, service in SERVICE_MARKERS.items():
            if item.get_closest_marker(marker) and service in unavailable:
                item.add_marker(pytest.mark.skip(reason=f"needs {service}: {unavailable[service]}"))
