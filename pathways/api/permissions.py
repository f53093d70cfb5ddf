"""Request-level permission. What a user may see and do is decided per object by pathways.selectors.access
(scoped querysets give 404 for the unseen; services raise NotPermitted for the forbidden); this class only
turns away anonymous and deactivated users."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsActiveStaff(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)
