"""URL configuration: API under /api/v1/, dashboard under /dashboard/, health at /healthz."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from pathways.health import healthz
from pathways.web.session_expiry import session_keepalive
from pathways.web.sign_on import SignOnCallbackView, SignOnStartView, SignOutView
from pathways.web.views import DashboardLoginView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on every origin (even for JSON pages); a 404 there is a console error.
    path("favicon.ico", RedirectView.as_view(url=static("pathways/favicon.svg"), permanent=True)),
    path("api/v1/", include("pathways.api.urls")),
    path("fhir/R4/", include("pathways.fhir.urls")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("pathways.web.urls")),
    # The clinicians' workspace: My work, patients, enrollments, the assignment board (docs/workspace.md).
    path("", include("pathways.web.workspace_urls")),
    # The dashboard's login goes through the same lockout and audit as the API's token login.
    path("accounts/login/", DashboardLoginView.as_view(), name="login"),
    # Logoff is audited and also ends the provider's session where it can (pathways/web/sign_on.py).
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("accounts/session/keepalive/", session_keepalive, name="session-keepalive"),
    # Sign-on through the hospital's OpenID Connect provider (404 unless OIDC_RP_CLIENT_ID is set).
    path("oidc/authenticate/", SignOnStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", SignOnCallbackView.as_view(), name="oidc_authentication_callback"),
    path("accounts/", include("django.contrib.auth.urls")),
]
