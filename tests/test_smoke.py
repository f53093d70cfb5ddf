"""The README's run command boots the embedded default (SQLite + filesystem broker) and /healthz answers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_embedded_run_command_starts_web_worker_and_beat_and_healthz_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY"}
    }
    env.update({"DEBUG": "1", "CAREPATH_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    log = (tmp_path / "up.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        body, deadline = None, time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
                    body = json.loads(response.read())
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        log.seek(0)
        output = log.read()
        assert body is not None, f"/healthz never answered; exit={process.poll()}\n{output[-3000:]}"
        assert body["status"] == "ok"
        assert body["checks"]["database"]["vendor"] == "sqlite"
        assert body["checks"]["broker"]["transport"] == "filesystem"
        # Demo data was seeded into the empty database, and the worker and beat came up.
        assert "Demo logins" in output
        # Each demo login is printed with the page that role starts on (issue 13).
        assert "starts at /work/" in output and "starts at /patients/" in output and "starts at /dashboard/" in output
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (" ready." in output and "beat: Starting" in output):
            time.sleep(1)
            log.seek(0)
            output = log.read()
        while time.monotonic() < deadline and output.count(" ready.") < 2:
            time.sleep(1)
            log.seek(0)
            output = log.read()
        # One worker per queue (docs/operations.md, "Queues").
        assert "sweeps@" in output and "email@" in output and output.count(" ready.") >= 2, output[-3000:]
        assert "beat: Starting" in output, output[-3000:]
        assert process.poll() is None
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
