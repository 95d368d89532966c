from django.apps import AppConfig


class SessionsConfig(AppConfig):
    # The label avoids a clash with django.contrib.sessions, which the admin needs.
    name = "sessions"
    label = "agent_sessions"
    verbose_name = "Agent sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sessions import checks  # noqa: F401  (registers the system checks)
