from celery import shared_task


@shared_task(name="audit.tasks.maintain_audit_partitions")
def maintain_audit_partitions() -> list[str]:
    from audit.services import audit_partitions_maintain

    return audit_partitions_maintain().created
