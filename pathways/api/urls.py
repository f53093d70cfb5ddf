"""/api/v1/ routes: one DRF router for every viewset, plus auth, schema and docs."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from pathways.api import clinical, photos, reports, tokens, views
from pathways.api.auth import TokenView

router = SimpleRouter()
router.register("sites", views.SiteViewSet, basename="site")
router.register("patients", views.PatientViewSet, basename="patient")
router.register("pathways", views.PathwayViewSet, basename="pathway")
router.register("enrollments", views.EnrollmentViewSet, basename="enrollment")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("queue", views.QueueViewSet, basename="queue")
router.register("notifications", views.NotificationViewSet, basename="notification")
# Clinical endpoints (pathways/api/clinical.py).
router.register("observations", clinical.ObservationViewSet, basename="observation")
router.register("flags", clinical.FlagViewSet, basename="flag")
router.register("medication-changes", clinical.MedicationChangeViewSet, basename="medication-change")
router.register("task-completions", clinical.TaskCompletionViewSet, basename="task-completion")
router.register("wound-photos", photos.WoundPhotoViewSet, basename="wound-photo")
# Reports (pathways/api/reports.py): adherence, the audit log, the staff directory.
router.register("adherence", reports.AdherenceViewSet, basename="adherence")
router.register("audit-events", reports.AuditEventViewSet, basename="audit-event")
router.register("users", reports.UserViewSet, basename="user")
# Service accounts and API tokens, for admins (pathways/api/tokens.py).
router.register("service-accounts", tokens.ServiceAccountViewSet, basename="service-account")
router.register("api-tokens", tokens.ApiTokenViewSet, basename="api-token")
# Every new route needs a row in tests/api/test_access_matrix.py or the suite fails.

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    *router.urls,
]
