"""``/metrics``: django-prometheus's request, database and cache metrics plus ours.

In one process the default registry holds everything. Under several processes
(gunicorn workers, Celery workers) set ``PROMETHEUS_MULTIPROC_DIR``: each process writes
its counters and histograms to files there, and a scrape of any web worker adds up the
files of every process on the host. Database-derived collectors
(``orchestrator_active_sessions``) are read once per scrape, never summed across
processes. See docs/operations.md.
"""

import os

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from sessions.metrics import register_collectors


def multiprocess_dir() -> str | None:
    # prometheus_client switches to multiprocess mode on this variable; so do we.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics_registry(*, with_database: bool = True) -> CollectorRegistry:
    """What a scrape exports: this process's registry, or the files of every process."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    if with_database:
        register_collectors(registry)
    return registry


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
