"""The demo staff user: a superuser with a published password, for ``make run``."""

from django.contrib.auth import get_user_model

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "sergas-demo"


def demo_user_ensure() -> tuple[str, str, bool]:
    """The demo staff superuser; returns (username, password, created)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return DEMO_USERNAME, DEMO_PASSWORD, created
