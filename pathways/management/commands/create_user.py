"""manage.py create_user USERNAME --email E --role R [--role R] --site CODE [--site CODE]."""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pathways.choices import Role
from pathways.errors import DomainError
from pathways.services.users import user_create


class Command(BaseCommand):
    help = (
        "Create a staff user. Roles: " + ", ".join(Role.values) + ". The password is read from the environment "
        "variable named by --password-env, or prompted for twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", action="append", dest="roles", default=[], help="repeat for several roles")
        parser.add_argument("--site", action="append", dest="sites", default=[], help="site code; repeatable")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")

    def _password(self, options: dict[str, Any]) -> str:
        if options["password_env"]:
            value = os.environ.get(options["password_env"])
            if not value:
                raise CommandError(f"environment variable {options['password_env']} is not set or empty")
            return value
        if not self.stdin_is_interactive():
            raise CommandError("no terminal to prompt for a password: use --password-env VAR")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords do not match")
        return first

    def stdin_is_interactive(self) -> bool:
        import sys

        return sys.stdin.isatty()

    def handle(self, *args: Any, **options: Any) -> None:
        roles = [r.strip() for value in options["roles"] for r in value.split(",") if r.strip()]
        sites = [s.strip() for value in options["sites"] for s in value.split(",") if s.strip()]
        if not roles:
            raise CommandError("give at least one --role (" + ", ".join(Role.values) + ")")
        if not sites:
            raise CommandError("give at least one --site")
        bad = [r for r in roles if r not in Role.values]
        if bad:
            raise CommandError(f"unknown role(s): {', '.join(bad)}; choose from {', '.join(Role.values)}")
        password = self._password(options)
        try:
            user = user_create(
                username=options["username"],
                email=options["email"],
                roles=roles,
                site_codes=sites,
                password=password,
                first_name=options["first_name"],
                last_name=options["last_name"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"created user {user.username} (id {user.pk}) with roles {', '.join(user.roles)} at {', '.join(sites)}"
            )
        )
