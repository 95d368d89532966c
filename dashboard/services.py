"""The dashboard's one write: the staff groups it relies on (``dashboard.groups``)."""

from typing import Any

from django.apps import apps as global_apps
from django.db import transaction

from dashboard.groups import GROUPS


@transaction.atomic
def staff_groups_ensure(**kwargs: Any) -> None:
    """Create the groups that do not exist, with their permissions (a ``post_migrate``
    receiver); a group that exists is left as administrators made it."""
    group_model = global_apps.get_model("auth", "Group")
    permission_model = global_apps.get_model("auth", "Permission")
    for name, permissions in GROUPS.items():
        if group_model.objects.filter(name=name).exists():
            continue
        group = group_model.objects.create(name=name)
        for dotted in permissions:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
