from django.apps import AppConfig


class HousekeepingConfig(AppConfig):
    """The daily prune of what other apps leave behind; owns no models."""

    name = "housekeeping"
    verbose_name = "Housekeeping"
