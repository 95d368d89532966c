from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardConfig(AppConfig):
    name = "dashboard"
    label = "dashboard"
    verbose_name = "Staff dashboard"

    def ready(self) -> None:
        from dashboard.services import staff_groups_ensure

        # Sent for this app after the apps listed before it, whose permissions exist then.
        post_migrate.connect(
            staff_groups_ensure, sender=self, dispatch_uid="dashboard.staff_groups"
        )
