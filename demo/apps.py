from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for ``make run``: ``manage.py seed_demo``. No models; it sits above every
    other app, since it seeds all of them."""

    name = "demo"
    label = "demo"
    verbose_name = "Demo data"
