"""manage.py purge_wound_photos [--as-of ISO-TIME]: remove the files of photos soft-deleted longer ago than
CAREPATH_PHOTO_RETENTION_DAYS (the rows and their audit trail stay)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from pathways.management.commands.run_scheduler import parse_as_of
from pathways.services.photos import wound_photos_purge


class Command(BaseCommand):
    help = (
        "Remove the stored files of wound photographs soft-deleted more than CAREPATH_PHOTO_RETENTION_DAYS ago. "
        "Each purge is an audit event; the rows stay. Safe to re-run (cron it daily)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", help="ISO 8601 time (UTC when no offset is given); default now")

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = parse_as_of(options["as_of"]) if options["as_of"] else timezone.now()
        report = wound_photos_purge(now=as_of)
        self.stdout.write(f"wound photos purged: {len(report.purged)}; failed: {len(report.failed)}")
        if report.failed:
            raise CommandError(f"could not remove the files of photo(s) {report.failed}; kept for the next run")
