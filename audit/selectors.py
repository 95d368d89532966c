"""Reads of the audit trail."""

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_events_for_session(session_id: str) -> QuerySet[AuditEvent]:
    """The session's trail, oldest first."""
    return AuditEvent.objects.filter(session_id=session_id).order_by("timestamp", "event_id")
