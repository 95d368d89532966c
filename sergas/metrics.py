"""``/metrics``: django-prometheus's request, database and cache metrics plus ours.

In one process the default registry holds everything. Under several processes
(gunicorn workers, Celery workers, beat) set ``PROMETHEUS_MULTIPROC_DIR``: each process
writes its counters and histograms to files there, and a scrape of any web worker adds
up the files of every process on the host. Metrics read from PostgreSQL
(``DatabaseCollector``: active sessions, the work backlog, the beat's leadership,
sealing, the default partition) are read once per scrape, never summed across
processes. See docs/operations.md.
"""

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

from django.db import Error, InterfaceError, OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Each app's metrics read from the database at scrape time, in this order.
DATABASE_READERS = (
    "sessions.metrics.database_families",
    "scheduling.metrics.database_families",
    "audit.metrics.database_families",
)
# A scrape that waits on a busy database is cut short, not left to Prometheus' timeout.
READ_TIMEOUT_MS = 2000
DATABASE_UP = "sergas_metrics_database_up"


class DatabaseCollector(Collector):
    """The metrics read from PostgreSQL at each scrape, each reader in a transaction of
    its own with a statement timeout. A scrape never fails for the database: a reader
    that fails is left out of it, and once the database is unreachable the rest are not
    tried (each would wait for the connect timeout again). ``sergas_metrics_database_up``
    says whether every reader answered."""

    def __init__(self, readers: Sequence[Callable[[], Iterable[Metric]]]) -> None:
        self.readers = readers

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        up = 1
        for reader in self.readers:
            try:
                outermost = not connection.in_atomic_block
                with transaction.atomic():
                    if outermost:  # SET LOCAL would outlive a savepoint
                        with connection.cursor() as cursor:
                            cursor.execute(f"SET LOCAL statement_timeout = {READ_TIMEOUT_MS}")
                    families = list(reader())
            except (OperationalError, InterfaceError) as exc:
                logger.warning("Database metrics not collected: %s", exc)
                up = 0
                break
            except Error as exc:
                logger.warning("Database metrics of %s not collected: %s", reader.__module__, exc)
                up = 0
                continue
            yield from families
        yield GaugeMetricFamily(
            DATABASE_UP,
            "1 when every metric read from PostgreSQL at this scrape was read; 0 when the"
            " database was unreachable or a read failed (those series are absent).",
            value=up,
        )


def database_collector() -> DatabaseCollector:
    return DatabaseCollector([import_string(path) for path in DATABASE_READERS])


def multiprocess_dir() -> str | None:
    # prometheus_client switches to multiprocess mode on this variable; so do we.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics_registry(*, with_database: bool = True) -> CollectorRegistry:
    """What a scrape exports: this process's registry (where the sergas app registered
    the database collector), or the files of every process plus the database collector."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    if with_database:
        registry.register(database_collector())
    return registry


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
