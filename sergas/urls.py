from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from sergas.health import healthz

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),
]

admin.site.site_header = "Sergas control plane"
admin.site.site_title = "Sergas"
