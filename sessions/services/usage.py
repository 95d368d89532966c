"""Model usage of a session: tokens and their cost, from its traces."""

from decimal import Decimal

from django.db import transaction

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR
from sessions.models import AgentSession
from sessions.services._progress import metrics_apply
from sessions.services._write import lock_session, save_session


def session_record_usage(
    session_id: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cost_usd: Decimal,
    unpriced_models: list[str] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> AgentSession:
    """Add model usage to the session's metrics (``input_tokens``, ``output_tokens``,
    ``cost_usd``), with its audit event.

    Unlike ``session_update_metrics`` a finished session takes it too: an agent's span
    exporter sends its last batch after the agent has ended the session, and usage is a
    fact about what already happened, not a change of course. Call it once per span set
    (the traces app calls it with the spans that were new).
    """
    with transaction.atomic():
        session = lock_session(session_id)
        counters = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        fields = metrics_apply(session, counters, None, cost_usd=cost_usd)
        metadata: dict = {**counters, "cost_usd": f"{cost_usd:f}"}
        if unpriced_models:
            metadata["unpriced_models"] = sorted(set(unpriced_models))
        return save_session(
            session,
            fields=fields,
            event_type=AuditEventType.SESSION_METRICS,
            action="record_usage",
            actor=actor,
            metadata=metadata,
        )
