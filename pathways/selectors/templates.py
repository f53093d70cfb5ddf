"""What a pinned pathway version holds, read once per process (issue 15): its task templates (enrollment's
fixed cost) and its standing precautions (shown on every task row).

A version is written once, with its templates, in the transaction that publishes it (services/content.py
`_write_document`), and never changes afterwards but for its status: a new version is a new pathway row with
its own templates. So a process may keep these by version id. Only versions an enrollment can pin (active or
retired) come here.
"""

from __future__ import annotations

from typing import Any

from pathways.models import PathwayTemplate, TaskTemplate
from pathways.selectors.kept import LRUCache

# Versions x stages kept per process; a network runs a handful of pathways, each with a few versions.
MAX_KEPT = 64

_kept: LRUCache[tuple[int, str], tuple[TaskTemplate, ...]] = LRUCache(MAX_KEPT)
_precautions: LRUCache[int, list[dict[str, Any]]] = LRUCache(MAX_KEPT)


def stage_templates(*, pathway_id: int, stage: str) -> tuple[TaskTemplate, ...]:
    """The task templates of version `pathway_id` in `stage` (PathwayStage), in the version's order. The
    instances are shared by every caller in the process: read them, never change them. One query the first time
    per version and stage, none after."""
    templates = _kept.get((pathway_id, stage))
    if templates is None:
        templates = tuple(TaskTemplate.objects.filter(pathway_id=pathway_id, stage=stage))
        _kept.put((pathway_id, stage), templates)
    return templates


def precautions_by_version(version_ids: set[int]) -> dict[int, list[dict[str, Any]]]:
    """The standing precautions of pathway versions (PathwayTemplate.precautions: [{"code", "text", "roles",
    "citation"}]), by version id: one query for the versions not yet kept, none once they are. Shared lists:
    read them, never change them."""
    found: dict[int, list[dict[str, Any]]] = {}
    missing = set()
    for version_id in version_ids:
        precautions = _precautions.get(version_id)
        if precautions is None:
            missing.add(version_id)
        else:
            found[version_id] = precautions
    if missing:
        for version_id, precautions in PathwayTemplate.objects.filter(pk__in=missing).values_list("pk", "precautions"):
            _precautions.put(version_id, precautions)
            found[version_id] = precautions
    return found
