from typing import Any

from celery import shared_task


@shared_task(name="audit.tasks.maintain_audit_partitions")
def maintain_audit_partitions() -> dict[str, Any]:
    """Periodic (beat, daily): create, repair a default partition holding at most
    ``AUDIT_AUTO_REPAIR_MAX_ROWS`` rows, retire what retention allows."""
    from audit.services import audit_partitions_maintain

    report = audit_partitions_maintain(actor="task:maintain_audit_partitions", auto_repair=True)
    return {
        "created": report.created,
        "dropped": report.dropped,
        "deferred": report.deferred,
        "refused": report.refused,
        "default_rows": report.default_rows,
        "repaired": report.repaired,
        "repair_declined": report.repair_declined,
    }


@shared_task(name="audit.tasks.seal_audit_events")
def seal_audit_events() -> list[int]:
    """Periodic (beat, every AUDIT_SEAL_INTERVAL_SECONDS): extend the seal chain, then
    publish the signed heads to the witnesses (a failing witness is retried next run)."""
    from audit.services import audit_events_seal, audit_heads_publish

    sealed = [seal.number for seal in audit_events_seal()]
    audit_heads_publish(actor="task:seal_audit_events")
    return sealed
