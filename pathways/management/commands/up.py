"""manage.py up: migrate, load the pathway, seed demo data into an empty database, then run web + worker + beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from pathways.models import Patient


class Command(BaseCommand):
    help = (
        "Prepare the database and run the web server (gunicorn), a Celery worker and Celery beat in the "
        "foreground. Uses DATABASE_URL/CELERY_BROKER_URL when set, else SQLite and the filesystem transport. "
        "Ctrl-C stops all three."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("CAREPATH_BIND", "127.0.0.1:8000"))
        parser.add_argument("--no-seed", action="store_true", help="do not seed demo data into an empty database")
        parser.add_argument("--prepare-only", action="store_true", help="migrate/load/seed, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        self.stdout.write(f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or db['NAME']}")
        self.stdout.write(f"broker:   {settings.CELERY_BROKER_URL.split('@')[-1]}")
        self.stdout.write("[1/3] migrating")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("[2/3] loading pathway content")
        call_command("load_pathways", stdout=self.stdout)
        if options["no_seed"] or Patient.objects.exists():
            self.stdout.write("[3/3] demo data: skipped (database not empty, or --no-seed)")
        else:
            self.stdout.write("[3/3] seeding demo data into the empty database")
            call_command("seed_demo", stdout=self.stdout)
        if options["prepare_only"]:
            return
        self._run_processes(options["bind"])

    def _run_processes(self, bind: str) -> None:
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "carepath.wsgi",
                # The access-log format without query strings (no MRN from a search ever reaches a log).
                "--config",
                "python:carepath.gunicorn_conf",
                "--bind",
                bind,
                "--workers",
                "2",
                "--access-logfile",
                "-",
            ],
            # One worker per queue, so an e-mail backlog never delays the sweeps (docs/operations.md).
            "worker": [
                *[python, "-m", "celery", "-A", "carepath", "worker", "--loglevel", "INFO"],
                *["--queues", "sweeps", "--concurrency", "2", "--hostname", "sweeps@%h"],
            ],
            "email-worker": [
                *[python, "-m", "celery", "-A", "carepath", "worker", "--loglevel", "INFO"],
                *["--queues", "email", "--concurrency", "1", "--hostname", "email@%h"],
            ],
            "beat": [python, "-m", "celery", "-A", "carepath", "beat", "--loglevel", "INFO"],
        }
        children = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}  # noqa: S603
        self.stdout.write(
            f"running: web on http://{bind}/ (log in there; API /api/v1/, health /healthz), "
            "workers (sweeps, email), beat. Ctrl-C to stop.\n"
            "  where each role starts: specialists My work /work/, coordinators Patients /patients/ "
            "(unassigned work /assign/), auditors Adherence /dashboard/, admins My work /work/ (everything in the menu)"
        )

        def stop(*_: object) -> None:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, lambda *_: stop())
        exit_code = 0
        try:
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with status {child.returncode}; stopping the others")
                        exit_code = child.returncode or 1
                        raise SystemExit(exit_code)
                time.sleep(0.5)
        except (KeyboardInterrupt, SystemExit):
            stop()
            deadline = time.monotonic() + 15
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            if exit_code:
                raise SystemExit(exit_code) from None
