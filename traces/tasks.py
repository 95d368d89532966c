from typing import Any

from celery import shared_task


@shared_task(name="traces.tasks.maintain_trace_partitions")
def maintain_trace_partitions() -> dict[str, Any]:
    """Periodic (beat, on the maintenance queue: it runs DDL): make the coming days'
    partitions and drop the days past ``TRACES_RETENTION_DAYS``."""
    from traces.services import trace_partitions_maintain

    report = trace_partitions_maintain(actor="task:maintain_trace_partitions")
    return {"created": report.created, "dropped": report.dropped, "deferred": report.deferred}
