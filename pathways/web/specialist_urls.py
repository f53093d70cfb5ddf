"""Workspace routes for everyone on a care team: the landing page, My work, task actions, notifications, the
patient page, wound photographs."""

from django.urls import URLPattern, path

from pathways.web import patient_page, photos, work

urlpatterns: list[URLPattern] = [
    path("", work.home, name="home"),
    path("work/", work.my_work, name="my-work"),
    path("work/tasks/<int:task_id>/values/", work.task_complete_values, name="task-complete-values"),
    path("work/tasks/<int:task_id>/photos/", photos.task_photos, name="task-photos"),
    path("work/tasks/<int:task_id>/<slug:action>/", work.task_action, name="task-action"),
    path("work/notifications/", work.notifications, name="notifications"),
    path("work/notifications/read-all/", work.notifications_read_all, name="notifications-read-all"),
    path("work/notifications/<int:notification_id>/read/", work.notification_read, name="notification-read"),
    path("patients/<int:patient_id>/", patient_page.patient, name="patient"),
    path("photos/<int:photo_id>/delete/", photos.photo_delete, name="photo-delete"),
    path("photos/<int:photo_id>/<slug:variant>/", photos.photo_file, name="photo-file"),
]
