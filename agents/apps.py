from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    label = "agents"
    verbose_name = "Agent API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agents import checks  # noqa: F401  (registers the system checks)
