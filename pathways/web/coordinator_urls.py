"""Workspace routes for coordinators: the patient registry, registration, enrollment, care teams, assignment."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
