"""A second version of the bundled pathway that differs from the first in each way a migration handles."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import yaml
from django.conf import settings

from pathways.models import PathwayTemplate
from pathways.services.content import pathways_load

BUNDLED = Path(settings.CAREPATH["CONTENT_DIR"]) / "calciphylaxis.yaml"

ADDED = "wound-photograph"  # a new template, day 0 then every 14 days
REMOVED = "pain-score"  # a removed template (day-0 work, daily)
REPLANNED = "wound-assessment"  # every 7 days -> every 3 days
RULE_CHANGED = "high-phosphate-or-calcium"  # phosphate > 5.5 -> > 6.0 mg/dL

NEW_TEMPLATE = {
    "code": ADDED,
    "title": "Wound photographs for the remote dermatology review",
    "prong": "wound_care",
    "role": "wound_nursing",
    "first_due": {"day": 0},
    "due_within_hours": 24,
    "recurrence": {"kind": "interval", "every_days": 14},
    "instructions": "Photograph each lesion with the scale.",
    "citation": "Synthetic test content.",
}


def bundled_document() -> dict:
    return yaml.safe_load(BUNDLED.read_text(encoding="utf-8"))


def version_two_document() -> dict:
    """The bundled content with one template added, one removed, one re-timed and one rule threshold changed."""
    document = copy.deepcopy(bundled_document())
    templates = [t for t in document["task_templates"] if t["code"] != REMOVED]
    for template in templates:
        if template["code"] == REPLANNED:
            template["recurrence"] = {"kind": "interval", "every_days": 3}
    templates.append(dict(NEW_TEMPLATE))
    document["task_templates"] = templates
    for rule in document["rules"]:
        if rule["code"] == RULE_CHANGED:
            rule["when"]["any"][0]["value"] = 6.0
    return document


def load_document(tmp_path: Path, document: dict) -> PathwayTemplate:
    """Load `document` as the next version of its pathway and return that version."""
    path = tmp_path / f"{document['slug']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    [result] = pathways_load(paths=[path])
    return PathwayTemplate.objects.get(slug=document["slug"], version=result.version)


def load_version_two() -> PathwayTemplate:
    """Load `version_two_document()` as the next version (from a temporary file)."""
    with tempfile.TemporaryDirectory() as directory:
        return load_document(Path(directory), version_two_document())
