from django.apps import AppConfig


class SessionsConfig(AppConfig):
    # The label avoids a clash with django.contrib.sessions, which the admin needs.
    name = "sessions"
    label = "agent_sessions"
    verbose_name = "Agent sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from sergas.metrics import database_collector
        from sessions import checks  # noqa: F401  (registers the system checks)

        # One process without PROMETHEUS_MULTIPROC_DIR serves its default registry:
        # the metrics read from the database belong there (sergas.metrics).
        REGISTRY.register(database_collector())
