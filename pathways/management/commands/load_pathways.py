"""manage.py load_pathways [FILE ...] [--check | --sources-table]: load pathway content files as template versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pathways.errors import ContentError
from pathways.services.content import content_files, pathway_content_parse, pathway_sources_table, pathways_load


class Command(BaseCommand):
    help = (
        "Load pathway content files (default: every .yaml in pathways/content/). Identical content changes "
        "nothing; changed content becomes a new active version; invalid content writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", type=Path, help="content files (default: the bundled ones)")
        parser.add_argument("--check", action="store_true", help="validate only; write nothing")
        parser.add_argument(
            "--sources-table",
            action="store_true",
            help="print each file's templates, rules and precautions with their sources (markdown); write nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        paths = options["files"] or content_files(Path(settings.CAREPATH["CONTENT_DIR"]))
        if not paths:
            raise CommandError("no content files found")
        try:
            if options["sources_table"]:
                for path in paths:
                    document = pathway_content_parse(text=path.read_text(encoding="utf-8"), source=str(path))
                    self.stdout.write(pathway_sources_table(document=document), ending="")
                return
            if options["check"]:
                for path in paths:
                    document = pathway_content_parse(text=path.read_text(encoding="utf-8"), source=str(path))
                    self.stdout.write(
                        f"{path}: valid ({len(document['task_templates'])} task templates, "
                        f"{len(document['rules'])} rules)"
                    )
                return
            pathways_load(paths=paths, progress=self.stdout.write)
        except ContentError as exc:
            raise CommandError(f"{exc.message}\nNothing was written.") from exc
        except OSError as exc:
            raise CommandError(f"cannot read content: {exc}") from exc
