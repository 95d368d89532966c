"""The staff groups and their permissions (see ``dashboard.access``).

``dashboard/migrations/0001_staff_groups.py`` creates them;
``dashboard.services.staff_groups_ensure`` runs after every ``migrate`` (and every
test-database flush) and recreates a group that is missing. It never changes a group
that exists: administrators may adjust them.
"""

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
