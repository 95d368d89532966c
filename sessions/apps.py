from django.apps import AppConfig


class SessionsConfig(AppConfig):
    # The label avoids a clash with django.contrib.sessions, which the admin needs.
    name = "sessions"
    label = "agent_sessions"
    verbose_name = "Agent sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from sessions.metrics import register_collectors

        register_collectors(REGISTRY)
