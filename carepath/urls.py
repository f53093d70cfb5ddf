"""URL configuration: API under /api/v1/, dashboard under /dashboard/, health at /healthz."""

from django.contrib import admin
from django.urls import include, path

from pathways.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("pathways.api.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]
