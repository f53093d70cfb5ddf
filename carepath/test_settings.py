"""Settings for the test suite: the real settings, pointed at the real test services."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
# The test client and the browser tests speak plain http; tests/test_settings_deploy.py checks the secure
# production defaults in a process of its own.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("SECURE_COOKIES", "0")

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
# Wound photographs go to a scratch directory, never to var/photos/ (tests/photos override it per test too).
STORAGES = {
    **STORAGES,
    "wound_photos": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": tempfile.mkdtemp(prefix="carepath-test-photos-"), "base_url": None},
    },
}
