"""The two staff groups of the dashboard (and the admin): Viewers and Operators.

Permissions are normally created after all migrations (post_migrate); they are created
here first so the groups can be filled on a fresh database. The lists are a snapshot:
change them with a new migration, not by editing this one.
"""

from django.db import migrations

VIEWER_PERMISSIONS = [
    ("agent_sessions", "view_agentsession"),
    ("agent_sessions", "view_sessioncheckpoint"),
    ("scheduling", "view_scheduledreview"),
    ("scheduling", "view_scheduleexecution"),
    ("audit", "view_auditeventrecord"),
    ("agents", "view_agenttoken"),
    ("agents", "view_idempotencyrecord"),
]
OPERATOR_PERMISSIONS = [
    *VIEWER_PERMISSIONS,
    # Session controls (pause, resume, cancel, recover) in the dashboard and the admin.
    ("agent_sessions", "change_agentsession"),
    # Review controls: create, edit, pause, resume, trigger, delete.
    ("scheduling", "add_scheduledreview"),
    ("scheduling", "change_scheduledreview"),
    ("scheduling", "delete_scheduledreview"),
]
GROUPS = {"Viewers": VIEWER_PERMISSIONS, "Operators": OPERATOR_PERMISSIONS}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for config in apps.get_app_configs():
        # create_permissions skips app configs without a models module; migration state
        # has none, so lend it one for the call.
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        for app_label, codename in codenames:
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("agent_sessions", "0002_agentsession_summary"),
        ("scheduling", "0001_initial"),
        ("audit", "0001_initial"),
        ("agents", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
