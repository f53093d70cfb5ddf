"""Helpers for the specialists' workspace view tests: logged-in clients, action posts, task state."""

from __future__ import annotations

from typing import Any

from django.test import Client

from pathways.models import AuditEvent, Task, User

HTMX = {"HTTP_HX_REQUEST": "true"}


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_action(client: Client, task: Task, action: str, *, htmx: bool = False, **data: Any) -> Any:
    """POST an action with the task's current version unless `version` is given."""
    payload = {"version": task.version, "next": "/work/", **data}
    return client.post(f"/work/tasks/{task.pk}/{action}/", payload, **(HTMX if htmx else {}))


def state(task: Task) -> tuple[str, int | None, int]:
    """(status, assignee id, version) as stored now."""
    fresh = Task.objects.get(pk=task.pk)
    return fresh.status, fresh.assignee_id, fresh.version


def audit_event(response: Any) -> AuditEvent:
    return AuditEvent.objects.get(request_id=response["X-Request-ID"])
