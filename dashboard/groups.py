"""The staff groups and their permissions (see ``dashboard.access``).

``dashboard/migrations/0001_staff_groups.py`` creates them; ``staff_groups_ensure`` runs
after every ``migrate`` (and every test-database flush) and recreates a group that is
missing. It never changes a group that exists: administrators may adjust them.
"""

from typing import Any

from django.apps import apps as global_apps

from dashboard.access import OPERATORS_GROUP, VIEWERS_GROUP

VIEWER_PERMISSIONS = [
    "agent_sessions.view_agentsession",
    "agent_sessions.view_sessioncheckpoint",
    "scheduling.view_scheduledreview",
    "scheduling.view_scheduleexecution",
    "audit.view_auditeventrecord",
    "agents.view_agenttoken",
    "agents.view_idempotencyrecord",
]
OPERATOR_PERMISSIONS = [
    *VIEWER_PERMISSIONS,
    "agent_sessions.change_agentsession",
    "scheduling.add_scheduledreview",
    "scheduling.change_scheduledreview",
    "scheduling.delete_scheduledreview",
]
GROUPS = {VIEWERS_GROUP: VIEWER_PERMISSIONS, OPERATORS_GROUP: OPERATOR_PERMISSIONS}


def staff_groups_ensure(**kwargs: Any) -> None:
    """Create the groups that do not exist (a ``post_migrate`` receiver)."""
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
