from django.apps import AppConfig


class AccessConfig(AppConfig):
    """The API's access layer: tokens, authentication, throttling, the input guard,
    idempotency and refusals. The label stays ``agents`` (the tables and migrations
    predate the package's name)."""

    name = "access"
    label = "agents"
    verbose_name = "Agent API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from access import (
            checks,  # noqa: F401  (registers the system checks)
            receivers,
        )

        user_logged_in.connect(receivers.login_succeeded, dispatch_uid="sergas-login")
        user_login_failed.connect(receivers.login_failed, dispatch_uid="sergas-login-failed")
