"""HTTP load: gunicorn started as compose.yaml starts it (sync workers against PostgreSQL), load from wrk in a
second process, p50/p99 latency and requests per second with concurrent clients."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

REPORT_LUA = Path(__file__).with_name("report.lua")


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: latency percentiles (ms), throughput and failures."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non2xx: int
    # Set on a summary of several runs (the median of their rates).
    rps_override: float | None = None

    @property
    def rps(self) -> float:
        if self.rps_override is not None:
            return self.rps_override
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise CommandError("wrk is not installed (apt-get install -y wrk), or run with --no-http")
    return path


def database_url() -> str:
    """The URL of the database this process uses (the test runner renames it, so it is rebuilt, not read)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn_server(*, workers: int) -> Iterator[str]:
    """Start gunicorn as in compose.yaml (carepath.wsgi, sync workers, DEBUG off), but under
    carepath.bench_settings so the floor is mounted at /bench-floor/; yields the base URL and stops the server (its
    own process group) afterwards."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # The bench settings install the bench app and route /bench-floor/ (the product settings do not).
        "DJANGO_SETTINGS_MODULE": "carepath.bench_settings",
        "CONN_MAX_AGE": str(settings.DATABASES["default"].get("CONN_MAX_AGE") or 60),
    }
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "carepath.wsgi:application",
        "--config",
        "python:carepath.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
    ]
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        cmd,
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)  # noqa: S310 - local URL
                break
            except urllib.error.HTTPError:
                break  # it answers (a 503 only means Redis is down, which the pages do not need)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    raise CommandError(f"gunicorn did not start: {err[-2000:]}") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def check_page(url: str, token: str) -> bytes:
    """One request, which must answer 200 (a load test of error pages would measure nothing)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local URL
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{url} answered {exc.code}: {exc.read()[:500]!r}") from None


def wrk_run(*, url: str, token: str, seconds: float, connections: int, threads: int = 1) -> LoadResult:
    """Run wrk against one URL with a token and parse the JSON line report.lua prints."""
    cmd = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(REPORT_LUA),
        "-H",
        f"Authorization: Token {token}",
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 60)  # noqa: S603
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise CommandError(f"wrk failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")
    data = json.loads(line[len("BENCH_JSON ") :])
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        errors=data["errors"],
        non2xx=data["non2xx"],
    )
