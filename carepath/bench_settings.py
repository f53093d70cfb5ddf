"""Settings for the benchmarks (docs/benchmarks.md): the real settings, plus the `bench` app and its URLconf.

    DJANGO_SETTINGS_MODULE=carepath.bench_settings manage.py bench --scales 10000,100000,1000000

Only these settings install the bench app (so `manage.py bench` exists only here) and mount the floor views at
/bench-floor/; carepath.settings, which production runs, has neither.
"""

import os

# The bench talks plain http to itself on 127.0.0.1 (Django's test client in process, and a local gunicorn that
# wrk loads): with DEBUG off the production defaults would answer every request with a redirect to https.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("SECURE_COOKIES", "0")

from carepath.settings import *  # noqa: F403
from carepath.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"
