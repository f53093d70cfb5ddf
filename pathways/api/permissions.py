"""Request-level permission. What a user may see and do is decided per object by pathways.selectors.access
(scoped querysets give 404 for the unseen; services raise NotPermitted for the forbidden); this class turns
away anonymous and deactivated users, and requests outside an API token's scopes (403)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from pathways.choices import TokenScope
from pathways.models import ApiToken

# REST viewset basename -> the resource its token scopes name ("<resource>:read" / "<resource>:write").
RESOURCE_OF_BASENAME = {
    "observation": "observations",
    "task": "tasks",
    "queue": "tasks",
    "task-completion": "tasks",
    "notification": "tasks",
    "patient": "patients",
    "site": "patients",
    "enrollment": "enrollments",
    "flag": "enrollments",
    "medication-change": "enrollments",
    "pathway": "pathways",
    "adherence": "reports",
    "audit-event": "reports",
    "user": "reports",
}
# FHIR resource type -> resource; a system-level POST (a transaction Bundle of lab results) is observations.
RESOURCE_OF_FHIR_TYPE = {
    "Observation": "observations",
    "Bundle": "observations",
    "Task": "tasks",
    "Patient": "patients",
    "CarePlan": "enrollments",
    "CareTeam": "enrollments",
    "Flag": "enrollments",
    "PlanDefinition": "pathways",
    "AuditEvent": "reports",
}


def required_scope(request: Request, view: Any) -> str | None:
    """The TokenScope a request needs, or None when the view names no resource (then only "*" may call it)."""
    resource = getattr(view, "token_resource", None) or RESOURCE_OF_BASENAME.get(getattr(view, "basename", ""))
    if resource is None:
        kwargs = getattr(view, "kwargs", {}) or {}
        resource_type = kwargs.get("resource_type") or ("PlanDefinition" if "pk" in kwargs else "Bundle")
        if getattr(view, "fhir_interface", False):
            resource = RESOURCE_OF_FHIR_TYPE.get(resource_type)
    if resource is None:
        return None
    return f"{resource}:{'read' if request.method in SAFE_METHODS else 'write'}"


class IsActiveStaff(BasePermission):
    message = "this API token's scopes do not include this operation"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        token = request.auth
        if isinstance(token, ApiToken) and TokenScope.ALL not in token.scopes:
            needed = required_scope(request, view)
            return needed is not None and needed in token.scopes
        return True
