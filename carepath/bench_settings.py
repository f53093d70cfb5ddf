"""Settings for the benchmarks (docs/benchmarks.md): the real settings, plus the `bench` app and its URLconf.

    DJANGO_SETTINGS_MODULE=carepath.bench_settings manage.py bench --scales 10000,100000,1000000

Only these settings install the bench app (so `manage.py bench` exists only here) and mount the floor views at
/bench-floor/; carepath.settings, which production runs, has neither.
"""

from carepath.settings import *  # noqa: F403
from carepath.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"
