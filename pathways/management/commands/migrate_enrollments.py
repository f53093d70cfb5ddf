"""manage.py migrate_enrollments <slug> --to N [--from M] [--site CODE] [--enrollment ID] [--dry-run]: move
enrollments to another version of their pathway, resumably, with progress."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from pathways.errors import DomainError
from pathways.models import Enrollment
from pathways.selectors.migration import (
    MigrationPlan,
    enrollment_migration_preview,
    enrollments_for_migration,
    enrollments_migration_previews,
    pathway_versions_compare,
)
from pathways.services.migration import MigrationRun, enrollment_migrate, enrollments_migrate


def plan_lines(plan: MigrationPlan) -> list[str]:
    """A plan in words, one line per change (identifiers and codes only, no patient details)."""
    lines = [f"enrollment {plan.enrollment_id}: v{plan.from_version} -> v{plan.to_version}"]
    lines += [
        f"  cancel task {t['task']} ({t['template']}, {t['status']}): {t['reason']}" for t in plan.tasks_cancelled
    ]
    lines += [f"  end schedule {s['schedule']} ({s['template']}): {s['reason']}" for s in plan.schedules_ended]
    lines += [
        f"  re-plan schedule {s['schedule']} ({s['template']}): next {s['next_due_at']['old']} -> "
        f"{s['next_due_at']['new'] or 'none (finished)'}"
        for s in plan.schedules_replanned
    ]
    lines += [f"  start schedule {s['template']}: first due {s['next_due_at']}" for s in plan.schedules_started]
    lines += [f"  create task {t['template']}: available {t['available_at']}" for t in plan.tasks_created]
    lines.append(f"  open tasks kept as they are: {plan.open_tasks_kept}")
    return lines


class Command(BaseCommand):
    help = (
        "Move enrollments to version --to of a pathway: all active ones not on it (or only those on --from, at "
        "--site, or one --enrollment). On-hold and ended enrollments are skipped unless --include-on-hold / "
        "--include-ended. --dry-run prints each plan and changes nothing. Enrollments move --batch-size to a "
        "transaction: an interrupted run is resumed by running it again, and none moves twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="pathway slug, e.g. calciphylaxis")
        parser.add_argument("--to", dest="to_version", type=int, required=True, help="target version")
        parser.add_argument("--from", dest="from_version", type=int, help="only enrollments on this version")
        parser.add_argument("--site", help="only enrollments at this site (code)")
        parser.add_argument("--enrollment", type=int, help="only this enrollment")
        parser.add_argument("--include-on-hold", action="store_true")
        parser.add_argument("--include-ended", action="store_true", help="completed and revoked enrollments too")
        parser.add_argument("--dry-run", action="store_true", help="print the plans; change nothing")
        parser.add_argument("--json", action="store_true", help="with --dry-run: the plans as JSON")
        parser.add_argument(
            "--batch-size", type=int, default=100, help="enrollments per transaction; progress is printed after each"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["enrollment"] is not None:
                self._one(options)
            elif options["dry_run"]:
                self._dry_run(options)
            else:
                self._many(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def _one(self, options: dict[str, Any]) -> None:
        enrollment = Enrollment.objects.select_related("patient__site", "template").filter(pk=options["enrollment"])
        found = enrollment.first()
        if found is None or found.pathway_slug != options["slug"]:
            raise CommandError(f"no {options['slug']} enrollment {options['enrollment']}")
        if options["dry_run"]:
            pair = pathway_versions_compare(
                slug=found.pathway_slug, from_version=found.template.version, to_version=options["to_version"]
            )
            self._print_plans([enrollment_migration_preview(enrollment=found, pair=pair, now=timezone.now())], options)
            return
        plan = enrollment_migrate(
            enrollment_id=found.pk,
            to_version=options["to_version"],
            actor=None,
            include_on_hold=options["include_on_hold"],
            include_ended=options["include_ended"],
        )
        self._print_plans([plan], options)

    def _print_plans(self, plans: list[MigrationPlan], options: dict[str, Any]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps([p.as_dict() for p in plans], indent=2))
            return
        for plan in plans:
            for line in plan_lines(plan):
                self.stdout.write(line)

    def _selection_note(self, skipped_on_hold: int, skipped_ended: int) -> None:
        if skipped_on_hold:
            self.stdout.write(f"skipped {skipped_on_hold} on-hold enrollments (--include-on-hold to move them)")
        if skipped_ended:
            self.stdout.write(f"skipped {skipped_ended} completed or revoked enrollments (--include-ended)")

    def _dry_run(self, options: dict[str, Any]) -> None:
        selection = enrollments_for_migration(
            user=None,
            slug=options["slug"],
            to_version=options["to_version"],
            from_version=options["from_version"],
            site_code=options["site"],
            include_on_hold=options["include_on_hold"],
            include_ended=options["include_ended"],
        )
        plans = enrollments_migration_previews(ids=selection.ids, to_version=options["to_version"], now=timezone.now())
        self._print_plans(plans, options)
        if not options["json"]:
            self.stdout.write(f"dry run: {len(plans)} enrollments would move to v{options['to_version']}")
            self._selection_note(selection.skipped_on_hold, selection.skipped_ended)

    def _many(self, options: dict[str, Any]) -> None:
        started = time.monotonic()
        if not 1 <= options["batch_size"] <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000")

        def progress(run: MigrationRun) -> None:
            done = run.selected - run.remaining
            rate = done / max(time.monotonic() - started, 1e-9)
            self.stdout.write(
                f"{done}/{run.selected} done ({run.migrated} moved, {run.already} already moved, "
                f"{len(run.failed)} failed), {rate:.0f}/s"
            )

        run = enrollments_migrate(
            slug=options["slug"],
            to_version=options["to_version"],
            actor=None,
            from_version=options["from_version"],
            site_code=options["site"],
            include_on_hold=options["include_on_hold"],
            include_ended=options["include_ended"],
            progress=progress,
            batch_size=options["batch_size"],
        )
        self.stdout.write(
            f"moved {run.migrated} enrollments to v{options['to_version']}; {run.already} were already on it; "
            f"{len(run.failed)} failed"
        )
        for enrollment_id, message in run.failed:
            self.stdout.write(f"  enrollment {enrollment_id}: {message}")
        self._selection_note(run.skipped_on_hold, run.skipped_ended)
        if run.failed:
            raise CommandError(f"{len(run.failed)} enrollments were not moved; fix them and run again")
