"""The benchmarks live outside the product: only carepath.bench_settings installs the bench app (so only there is
`manage.py bench` a command) and routes /bench-floor/; the product's settings and URLconf know neither."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

from bench.floor import floor_queue, floor_tasks
from bench.http import gunicorn_server
from bench.urls import urlpatterns as bench_urlpatterns
from carepath.urls import urlpatterns as product_urlpatterns

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, settings_module: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update({"DJANGO_SETTINGS_MODULE": settings_module, "DEBUG": "1", "CAREPATH_VAR_DIR": str(tmp_path)})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_bench_command_exists_under_the_bench_settings_only(tmp_path: Path) -> None:
    under_bench = _manage("help", "bench", settings_module="carepath.bench_settings", tmp_path=tmp_path)
    assert under_bench.returncode == 0, under_bench.stderr
    # Its own help says how to run it.
    assert "DJANGO_SETTINGS_MODULE=carepath.bench_settings" in " ".join(under_bench.stdout.split())
    assert "--scales" in under_bench.stdout

    under_product = _manage("help", "bench", settings_module="carepath.settings", tmp_path=tmp_path)
    assert under_product.returncode != 0
    assert "Unknown command: 'bench'" in under_product.stderr


def test_the_bench_command_says_to_create_a_missing_scratch_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    missing = "carepath_bench_never_created_x"
    env.update(
        DJANGO_SETTINGS_MODULE="carepath.bench_settings",
        DEBUG="1",
        CAREPATH_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{missing}",
    )
    run = subprocess.run(
        [sys.executable, "manage.py", "bench", "--scales", "100", "--no-http"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert "Traceback" not in run.stderr, run.stderr
    assert f"cannot connect to the bench database '{missing}'" in run.stderr
    assert f"createdb -h 127.0.0.1 -U postgres {missing}" in run.stderr


def test_the_bench_settings_serve_plain_http_with_debug_off() -> None:
    # With DEBUG off the product's settings redirect every request to https; the bench talks plain http to
    # itself (the in-process client and a local gunicorn), so its settings must not (every page answered 301).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_")}
    env.update({"DJANGO_SETTINGS_MODULE": "carepath.bench_settings", "DEBUG": "0", "SECRET_KEY": "bench-only-x" * 4})
    code = "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.DEBUG)"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "0", "False"]


def test_the_floor_is_routed_by_the_bench_urlconf_and_never_by_the_products() -> None:
    for path in ("/bench-floor/queue/", "/bench-floor/tasks/"):
        with pytest.raises(Resolver404):
            resolve(path, urlconf="carepath.urls")
    assert resolve("/bench-floor/queue/", urlconf="bench.urls").func is floor_queue
    assert resolve("/bench-floor/tasks/", urlconf="bench.urls").func is floor_tasks
    # The bench URLconf is the product's routes plus the floor, so the API pages it measures are the product's.
    assert bench_urlpatterns[: len(product_urlpatterns)] == product_urlpatterns
    assert resolve("/api/v1/queue/", urlconf="bench.urls").func.__name__ == resolve("/api/v1/queue/").func.__name__


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db
def test_the_benchs_gunicorn_runs_under_the_bench_settings_and_serves_the_floor() -> None:
    with gunicorn_server(workers=1) as base:
        # No token: the floor refuses with 401. Under the product's settings it would be a 404.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/bench-floor/queue/", timeout=10)  # noqa: S310 - local URL
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(f"{base}/bench-floor/nowhere/", timeout=10)  # noqa: S310 - local URL
        assert unknown.value.code == 404
