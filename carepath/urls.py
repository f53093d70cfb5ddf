"""URL configuration: API under /api/v1/, dashboard under /dashboard/, health at /healthz."""

from django.contrib import admin
from django.urls import include, path

from pathways.health import healthz
from pathways.web.views import DashboardLoginView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("pathways.api.urls")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("pathways.web.urls")),
    # The dashboard's login goes through the same lockout and audit as the API's token login.
    path("accounts/login/", DashboardLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
]
