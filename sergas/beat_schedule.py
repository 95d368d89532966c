"""Beat's periodic tasks, in one place: Celery's ``beat_schedule``, installed on the app
by sergas/celery.py. Intervals an app lets you set (drills shorten them to seconds) are
read through its conf; the others are fixed here. Review runs are not beat entries:
beat's scheduler dispatches them itself (scheduling/beat.py)."""

from typing import Any

HOUR = 3600.0
DAY = 24 * HOUR


def beat_schedule() -> dict[str, dict[str, Any]]:
    from access import conf as access_conf
    from audit import conf as audit_conf
    from scheduling import conf as scheduling_conf
    from sessions import conf as sessions_conf

    return {
        # Crash detection and recovery run every minute by default.
        "scheduling-recover-interrupted-runs": {
            "task": "scheduling.tasks.recover_interrupted_runs",
            "schedule": scheduling_conf.recovery_check_seconds(),
        },
        "sessions-interrupt-stale": {
            "task": "sessions.tasks.interrupt_stale_sessions",
            "schedule": sessions_conf.stale_check_seconds(),
        },
        # Approvals past their deadline take their default decision.
        "sessions-expire-approvals": {
            "task": "sessions.tasks.expire_approvals",
            "schedule": sessions_conf.approval_expiry_check_seconds(),
        },
        "agents-prune-idempotency-records": {
            "task": "agents.tasks.prune_idempotency_records",
            "schedule": HOUR,
        },
        # One audit event per closed window of failed authentications from one address.
        "agents-flush-auth-failure-summaries": {
            "task": "agents.tasks.flush_auth_failure_summaries",
            "schedule": access_conf.auth_failure_flush_seconds(),
        },
        # DDL: on a queue of its own when only the tables' owner may run it.
        "audit-maintain-partitions": {
            "task": "audit.tasks.maintain_audit_partitions",
            "schedule": DAY,
            "options": {"queue": audit_conf.maintenance_queue()},
        },
        # Finished runs, their batches, finished sessions, by their retentions.
        "housekeeping-prune": {
            "task": "housekeeping.tasks.prune",
            "schedule": DAY,
        },
        # DDL too: the coming days' trace_span partitions, days past their retention.
        "traces-maintain-partitions": {
            "task": "traces.tasks.maintain_trace_partitions",
            "schedule": 6 * HOUR,
            "options": {"queue": audit_conf.maintenance_queue()},
        },
        "audit-seal-events": {
            "task": "audit.tasks.seal_audit_events",
            "schedule": float(audit_conf.seal_interval_seconds()),
        },
    }
