"""Pathway templates: versioned, immutable once active."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from pathways.choices import PathwayStage, Priority, Prong, RecurrenceKind, Role, TemplateStatus


class PathwayTemplate(models.Model):
    """One version of a pathway (FHIR PlanDefinition). Enrollments pin the version they came from."""

    slug = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=TemplateStatus.choices, default=TemplateStatus.DRAFT)
    citations = models.JSONField(default=list, blank=True)
    # Standing precautions: [{"code", "text", "roles": [Role, ...], "citation"}], shown on the enrollment and
    # on every task owned by one of the named roles (docs/pathway-content.md, "Precautions").
    precautions = models.JSONField(default=list, blank=True, db_default=[])
    # sha256 of the normalized content: reloading identical content is recognised and changes nothing.
    content_hash = models.CharField(max_length=64)
    source_file = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="%(app_label)s_%(class)s_unique_slug_version"),
            models.UniqueConstraint(
                fields=["slug"],
                condition=Q(status=TemplateStatus.ACTIVE),
                name="%(app_label)s_%(class)s_unique_active_per_slug",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slug} v{self.version}"


class TaskTemplate(models.Model):
    """A kind of work in a pathway version: who owns it, when it is first due, how it recurs, when it applies."""

    pathway = models.ForeignKey(PathwayTemplate, on_delete=models.CASCADE, related_name="task_templates")
    code = models.SlugField(max_length=64)
    title = models.CharField(max_length=255)
    prong = models.CharField(max_length=32, choices=Prong.choices)
    # Workup templates run while the diagnosis is suspected; treatment templates from the diagnosis on.
    stage = models.CharField(
        max_length=16, choices=PathwayStage.choices, default=PathwayStage.TREATMENT, db_default=PathwayStage.TREATMENT
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    # Other roles that share the work (e.g. pharmacy with nephrology); informational, the pool is `role`.
    supporting_roles = models.JSONField(default=list, blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    # {"day": N, "at": "HH:MM"?}: N local calendar days after enrollment (see docs/pathway-content.md).
    first_due = models.JSONField(default=dict, blank=True)
    due_within_hours = models.PositiveIntegerField(default=24)
    # Session-bound work (a dose at a dialysis session): hours after an occurrence starts after which it can no
    # longer be done and closes as missed (at least due_within_hours). Null: never expires, stays overdue work.
    expires_after_hours = models.PositiveIntegerField(null=True, blank=True)
    recurrence_kind = models.CharField(max_length=32, choices=RecurrenceKind.choices)
    # Kind-specific parameters: every_hours/every_days, weekdays, at, hours, count, until_day.
    recurrence = models.JSONField(default=dict, blank=True)
    # {"dialysis_modality": [...], "medications_any": [...]}; all given keys must hold.
    applies_if = models.JSONField(default=dict, blank=True)
    prerequisites = models.JSONField(default=list, blank=True)  # task template codes
    instructions = models.TextField(blank=True)
    citation = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["pathway", "position"]
        constraints = [
            models.UniqueConstraint(fields=["pathway", "code"], name="%(app_label)s_%(class)s_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code


class Rule(models.Model):
    """A clinical trigger: an observation or event condition and the actions it takes (evaluated by one engine)."""

    pathway = models.ForeignKey(PathwayTemplate, on_delete=models.CASCADE, related_name="rules")
    code = models.SlugField(max_length=64)
    description = models.TextField(blank=True)
    when = models.JSONField()
    actions = models.JSONField()
    citation = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["pathway", "position"]
        constraints = [
            models.UniqueConstraint(fields=["pathway", "code"], name="%(app_label)s_%(class)s_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code
