"""Settings for the test suite: the real settings, pointed at the real test services."""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")

from carepath.settings import *  # noqa: F403
from carepath.testing import choose_services

_services = choose_services()
DATABASES = _services["DATABASES"]
SERVICES_UNAVAILABLE: dict[str, str] = _services["SERVICES_UNAVAILABLE"]
if "CELERY_BROKER_URL" in _services:
    REDIS_URL = _services["REDIS_URL"]
    CELERY_BROKER_URL = _services["CELERY_BROKER_URL"]
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; test users only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WHITENOISE_USE_FINDERS = True
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}
# Whitenoise warns on every request when STATIC_ROOT is missing (a fresh clone has no var/ yet).
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
