"""/dashboard/ routes."""

from django.urls import path

from pathways.web import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("overdue/", views.overdue, name="overdue"),
    path("patients/", views.patients, name="patients"),
    path("patients/<int:patient_id>/", views.board, name="board"),
    path("audit/", views.audit_log, name="audit"),
]
