"""The project's URLs plus ``/bench/trivial``, the baseline of bench/http.py: a Django
view that does no work, served by the same gunicorn."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from sergas.urls import urlpatterns as project_urlpatterns


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/trivial", trivial), *project_urlpatterns]
