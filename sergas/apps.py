from django.apps import AppConfig


class SergasConfig(AppConfig):
    """The project's wiring as an app: a home for its command (``serve_metrics``, the
    project's metrics for a host without a web process) and its start-up. No models."""

    name = "sergas"
    label = "sergas"
    verbose_name = "Sergas"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from sergas.metrics import database_collector

        # One process without PROMETHEUS_MULTIPROC_DIR serves its default registry:
        # the metrics read from the database belong there (sergas.metrics).
        REGISTRY.register(database_collector())
