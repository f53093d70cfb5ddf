"""manage.py api_token: service accounts and their API tokens (issue 18; README, "Issuing a token to a lab
interface"). The operator at the command line acts as an admin; every change is audited as "manage.py".

    api_token service-account USERNAME --role R --site CODE [--description TEXT]
    api_token issue USERNAME --scope S [--scope S] [--days N] [--name NAME]   (prints the key, once)
    api_token rotate TOKEN_ID [--days N]                                      (prints the new key, once)
    api_token revoke TOKEN_ID
    api_token list [USERNAME]
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pathways.choices import TokenScope
from pathways.errors import DomainError
from pathways.models import ApiToken, User
from pathways.services.api_tokens import api_token_issue, api_token_revoke, api_token_rotate, service_account_create


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class Command(BaseCommand):
    help = "Create service accounts and issue, rotate, revoke or list API tokens. Scopes: " + ", ".join(
        TokenScope.values
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        account = sub.add_parser("service-account", help="create a non-person account")
        account.add_argument("username")
        account.add_argument("--role", action="append", dest="roles", default=[], required=True)
        account.add_argument("--site", action="append", dest="sites", default=[], required=True)
        account.add_argument("--description", default="")
        issue = sub.add_parser("issue", help="issue a token (printed once)")
        issue.add_argument("username")
        issue.add_argument("--scope", action="append", dest="scopes", default=[])
        issue.add_argument("--days", type=int, help="lifetime in days")
        issue.add_argument("--name", default="")
        rotate = sub.add_parser("rotate", help="replace a token with a new key; the old one stops working")
        rotate.add_argument("token_id", type=int)
        rotate.add_argument("--days", type=int, help="lifetime of the new key in days")
        revoke = sub.add_parser("revoke", help="revoke a token at once")
        revoke.add_argument("token_id", type=int)
        listing = sub.add_parser("list", help="tokens (never their keys)")
        listing.add_argument("username", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["action"].replace("-", "_"))(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def _days(self, options: dict[str, Any]) -> dt.timedelta | None:
        return dt.timedelta(days=options["days"]) if options.get("days") else None

    def _service_account(self, options: dict[str, Any]) -> None:
        user = service_account_create(
            username=options["username"],
            roles=_split(options["roles"]),
            site_codes=_split(options["sites"]),
            description=options["description"],
            actor=None,
        )
        self.stdout.write(f"service account {user.username} (user {user.pk}) created")

    def _issue(self, options: dict[str, Any]) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        token, key = api_token_issue(
            user=user, scopes=_split(options["scopes"]), name=options["name"], lifetime=self._days(options), actor=None
        )
        self._print_key(token, key)

    def _rotate(self, options: dict[str, Any]) -> None:
        token, key = api_token_rotate(token_id=options["token_id"], lifetime=self._days(options), actor=None)
        self._print_key(token, key)

    def _revoke(self, options: dict[str, Any]) -> None:
        token = api_token_revoke(token_id=options["token_id"], actor=None)
        self.stdout.write(f"token {token.pk} revoked at {token.revoked_at:%Y-%m-%dT%H:%M:%SZ}")

    def _list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.select_related("user").order_by("user__username", "pk")
        if options.get("username"):
            tokens = tokens.filter(user__username=options["username"])
        for token in tokens:
            state = "revoked" if token.revoked_at else f"expires {token.expires_at:%Y-%m-%dT%H:%M:%SZ}"
            self.stdout.write(
                f"{token.pk}\t{token.user.username}\t{token.prefix}…\t{','.join(token.scopes)}\t{state}\t{token.name}"
            )

    def _print_key(self, token: ApiToken, key: str) -> None:
        self.stdout.write(
            f"token {token.pk} for {token.user.username}, scopes {','.join(token.scopes)}, "
            f"expires {token.expires_at:%Y-%m-%dT%H:%M:%SZ}\n{key}\n"
            "The key is shown only now: Carepath keeps its hash. Send it as: Authorization: Token <key>"
        )
