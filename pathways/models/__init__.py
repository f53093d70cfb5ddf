"""Models, one module per aggregate; imported here so Django finds them."""

from pathways.models.accounts import ApiToken, ExternalIdentity, ServiceAccount
from pathways.models.audit import AuditEvent, AuditEventSite
from pathways.models.care import CareTeamMember, Enrollment, EnrollmentEvent, Patient, Site, User
from pathways.models.clinical import Assessment, Flag, MedicationChange, Observation, RuleFiring, WoundPhoto
from pathways.models.tasks import FirstAction, Notification, Schedule, Task, TaskEvent
from pathways.models.templates import PathwayTemplate, Rule, TaskTemplate

__all__ = [
    "ApiToken",
    "Assessment",
    "AuditEvent",
    "AuditEventSite",
    "CareTeamMember",
    "Enrollment",
    "EnrollmentEvent",
    "ExternalIdentity",
    "FirstAction",
    "Flag",
    "MedicationChange",
    "Notification",
    "Observation",
    "PathwayTemplate",
    "Patient",
    "Rule",
    "RuleFiring",
    "Schedule",
    "ServiceAccount",
    "Site",
    "Task",
    "TaskEvent",
    "TaskTemplate",
    "User",
    "WoundPhoto",
]
