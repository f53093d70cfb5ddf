"""The audit trail: one FHIR AuditEvent-shaped row per read of patient data, change, login and denied request."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from pathways.choices import AuditAction, AuditOutcome


class AuditEvent(models.Model):
    """Who did what to which record, when, from where, and how it ended (FHIR AuditEvent).

    Append-only: the application only inserts, and on PostgreSQL a trigger (migration 0003_audit) rejects
    UPDATE and DELETE, so an event cannot be edited away even by code that forgets the rule.
    """

    recorded_at = models.DateTimeField()  # UTC (USE_TZ); FHIR AuditEvent.recorded
    # Null for anonymous requests and failed logins; users are deactivated, never deleted, hence PROTECT.
    actor = models.ForeignKey("pathways.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The username presented at login (FHIR agent.altId), also for unknown accounts; blank otherwise.
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=1, choices=AuditAction.choices)
    # What kind of operation: "read", "search", "login", "task.complete", "dashboard.board", ...
    subtype = models.CharField(max_length=64)
    entity_type = models.CharField(max_length=64, blank=True)
    entity_id = models.CharField(max_length=64, blank=True)
    # For searches and lists: the ids returned on the page (FHIR allows one entity per returned resource).
    entity_ids = models.JSONField(default=list, blank=True)
    patient = models.ForeignKey("pathways.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=2, choices=AuditOutcome.choices)
    outcome_desc = models.CharField(max_length=200, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=500, blank=True)
    # The query string of a search (FHIR entity.query); identifiers only, never free text about patients.
    query = models.TextField(blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=AuditAction.values), name="%(app_label)s_%(class)s_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=AuditOutcome.values), name="%(app_label)s_%(class)s_outcome_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["recorded_at"], name="pathways_audit_recorded"),
            models.Index(fields=["patient", "recorded_at"], name="pathways_audit_patient"),
            models.Index(fields=["actor", "recorded_at"], name="pathways_audit_actor"),
            models.Index(fields=["entity_type", "entity_id"], name="pathways_audit_entity"),
            models.Index(fields=["request_id"], name="pathways_audit_request"),
        ]

    def __str__(self) -> str:
        return f"audit {self.pk} {self.action} {self.entity_type} {self.entity_id} ({self.outcome})"


class AuditEventSite(models.Model):
    """One site an audit event concerns (docs/audit.md, "Who may read which events"); an auditor sees an event
    when one of its sites is theirs. Written with the event, append-only like it (trigger in migration 0010)."""

    # CASCADE only describes the relation: the database refuses to delete either row (append-only triggers).
    event = models.ForeignKey(AuditEvent, on_delete=models.CASCADE, related_name="site_links")
    site = models.ForeignKey("pathways.Site", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "site"], name="%(app_label)s_%(class)s_unique_event_site"),
        ]
        indexes = [models.Index(fields=["site", "event"], name="pathways_auditsite_site")]

    def __str__(self) -> str:
        return f"audit {self.event_id} concerns site {self.site_id}"
