from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    label = "scheduling"
    verbose_name = "Scheduled reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from scheduling.receivers import follow_run_session
        from sessions.signals import session_transitioned

        session_transitioned.connect(follow_run_session, dispatch_uid="scheduling.follow_run")
