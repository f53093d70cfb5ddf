"""manage.py seed_demo: synthetic demo sites, users and enrolled patients (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pathways.choices import TemplateStatus
from pathways.models import PathwayTemplate, User
from pathways.services.demo import DEMO_PASSWORD, demo_seed
from pathways.web.nav import start_url


class Command(BaseCommand):
    help = "Create synthetic demo data (three sites, a user per role, ~20 enrolled patients). Safe to re-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients-per-site", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["patients_per_site"] < 0:
            raise CommandError("--patients-per-site must be 0 or more")
        if not PathwayTemplate.objects.filter(slug="calciphylaxis", status=TemplateStatus.ACTIVE).exists():
            raise CommandError("the calciphylaxis pathway is not loaded: run manage.py load_pathways first")
        logins = demo_seed(patients_per_site=options["patients_per_site"], progress=self.stdout.write)
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}) - synthetic data, not for production:")
        users = User.objects.in_bulk([login.username for login in logins], field_name="username")
        for login in logins:
            start = start_url(users[login.username]) if login.username in users else "/"
            roles, sites = ", ".join(login.roles), ", ".join(login.sites)
            self.stdout.write(f"  {login.username:<22} {roles:<20} starts at {start:<12} sites: {sites}")
