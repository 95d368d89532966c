"""Reads of API access."""

from datetime import datetime

from django.db.models import QuerySet

from access.models import AgentToken
from audit.models import AuditEvent, AuditEventType


def agent_token_get_by_prefix(prefix: str) -> AgentToken | None:
    return AgentToken.objects.filter(prefix=prefix).first()


def agent_tokens_list(*, include_revoked: bool = False) -> QuerySet[AgentToken]:
    tokens = AgentToken.objects.order_by("name", "-created_at")
    if not include_revoked:
        tokens = tokens.filter(revoked_at__isnull=True)
    return tokens


def auth_failure_summary_exists(*, resource: str, summary_id: str, since: datetime) -> bool:
    """Whether the summary ``summary_id`` of failed authentications is in the audit trail
    (written after its window began, ``since``: the partitions before are not read)."""
    return AuditEvent.objects.filter(
        event_type=AuditEventType.AUTH,
        action="authentication_failures_summarized",
        resource=resource,
        timestamp__gte=since,
        metadata__contains={"summary_id": summary_id},
    ).exists()
