"""manage.py pathway_diff <slug> <from version> <to version> [--json]: what differs between two versions."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pathways.errors import InvalidInput
from pathways.selectors.migration import pathway_versions_compare


class Command(BaseCommand):
    help = (
        "Compare two versions of a pathway by task template and rule code: added, removed, and changed with "
        "the fields that changed (old -> new). --json prints the API's shape."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="pathway slug, e.g. calciphylaxis")
        parser.add_argument("from_version", type=int)
        parser.add_argument("to_version", type=int)
        parser.add_argument("--json", action="store_true", help="print JSON (the API's shape)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            pair = pathway_versions_compare(
                slug=options["slug"], from_version=options["from_version"], to_version=options["to_version"]
            )
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        diff = pair.diff
        if options["json"]:
            self.stdout.write(json.dumps(diff.as_dict(), indent=2))
            return
        self.stdout.write(f"{diff.slug} v{diff.from_version} -> v{diff.to_version}")
        if diff.is_empty:
            self.stdout.write("  no differences")
            return
        for kind, added, removed, changed in (
            ("task template", diff.templates_added, diff.templates_removed, diff.templates_changed),
            ("rule", diff.rules_added, diff.rules_removed, diff.rules_changed),
        ):
            for code in added:
                self.stdout.write(f"  + {kind} {code}")
            for code in removed:
                self.stdout.write(f"  - {kind} {code}")
            for change in changed:
                self.stdout.write(f"  ~ {kind} {change.code}")
                for name, values in change.fields.items():
                    old, new = json.dumps(values.old), json.dumps(values.new)
                    self.stdout.write(f"      {name}: {old} -> {new}")
