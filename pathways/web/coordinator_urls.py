"""Workspace routes for coordinators: the patient registry, registration, enrollment, care teams, assignment."""

from django.urls import URLPattern, path

from pathways.web import coordination as views
from pathways.web import migration

urlpatterns: list[URLPattern] = [
    path("patients/", views.patients, name="patients"),
    path("patients/new/", views.patient_register, name="patient-register"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient-edit"),
    path("patients/<int:patient_id>/enrol/", views.patient_enrol, name="patient-enrol"),
    path("enrollments/<int:enrollment_id>/care-team/", views.care_team, name="care-team"),
    path("enrollments/<int:enrollment_id>/care-team/<int:member_id>/end/", views.care_team_end, name="care-team-end"),
    path("enrollments/<int:enrollment_id>/calendar/", views.enrollment_calendar, name="enrollment-calendar"),
    path("enrollments/<int:enrollment_id>/release-hold/", views.release_hold, name="enrollment-release-hold"),
    *(
        path(
            f"enrollments/<int:enrollment_id>/{action}/",
            views.enrollment_action,
            {"action": action},
            name=f"enrollment-{action}",
        )
        for action in views.LIFECYCLE
    ),
    path("enrollments/<int:enrollment_id>/migrate/", migration.enrollment_migration, name="enrollment-migrate"),
    path("pathway/migrate/", migration.pathway_migration, name="pathway-migration"),
    path("assign/", views.board, name="assignment-board"),
    path("assign/<int:task_id>/reassign/", views.task_reassign, name="task-reassign"),
]
