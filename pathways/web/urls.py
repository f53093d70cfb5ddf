"""/dashboard/ routes."""

from django.urls import path

from pathways.web import patient_page, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("overdue/", views.overdue, name="overdue"),
    path("patients/", views.patients, name="patients"),
    # The board became the workspace's patient page (docs/workspace.md); old links still work.
    path("patients/<int:patient_id>/", patient_page.board_redirect, name="board"),
    path("audit/", views.audit_log, name="audit"),
]
