"""A pinned pathway version's task templates, read once per process (issue 15: enrollment's fixed cost).

A version's templates are written once, in the transaction that publishes the version (services/content.py
`_write_document`), and never change afterwards: a new version is a new pathway row with its own templates.
So a process may keep them by version id. Only versions an enrollment can pin (active or retired) come here.
"""

from __future__ import annotations

from pathways.models import TaskTemplate
from pathways.selectors.kept import LRUCache

# Versions x stages kept per process; a network runs a handful of pathways, each with a few versions.
MAX_KEPT = 64

_kept: LRUCache[tuple[int, str], tuple[TaskTemplate, ...]] = LRUCache(MAX_KEPT)


def stage_templates(*, pathway_id: int, stage: str) -> tuple[TaskTemplate, ...]:
    """The task templates of version `pathway_id` in `stage` (PathwayStage), in the version's order. The
    instances are shared by every caller in the process: read them, never change them. One query the first time
    per version and stage, none after."""
    templates = _kept.get((pathway_id, stage))
    if templates is None:
        templates = tuple(TaskTemplate.objects.filter(pathway_id=pathway_id, stage=stage))
        _kept.put((pathway_id, stage), templates)
    return templates
