"""Workspace routes for everyone on a care team: the landing page, My work, task actions, notifications, the
patient page."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
