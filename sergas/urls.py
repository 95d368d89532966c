from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from sergas.api import api
from sergas.health import healthz, livez, readyz
from sergas.metrics import metrics

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:overview", permanent=False)),
    path("dashboard/", include("dashboard.urls")),
    # Staff only: the admin's form refuses accounts without is_staff.
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="dashboard/login.html",
            authentication_form=AdminAuthenticationForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    # Kubernetes-style probes (sergas/health.py): liveness without dependencies, readiness.
    path("livez", livez, name="livez"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # django-prometheus's metrics plus ours, right under several processes (sergas.metrics).
    path("metrics", metrics, name="prometheus-django-metrics"),
]

# A database outage outside a view is a 503 too; everything else keeps the 500 page.
handler500 = "kernel.availability.server_error"
# A refused staff page is recorded in the audit trail.
handler403 = "access.views.permission_denied"

admin.site.site_header = "Sergas control plane"
admin.site.site_title = "Sergas"
admin.site.site_url = "/dashboard/"  # the admin's "View site" link
