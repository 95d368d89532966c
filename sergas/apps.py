from django.apps import AppConfig


class SergasConfig(AppConfig):
    """The project's wiring as an app only so that its command (``serve_metrics``, the
    project's metrics for a host without a web process) has a home. No models."""

    name = "sergas"
    label = "sergas"
    verbose_name = "Sergas"
