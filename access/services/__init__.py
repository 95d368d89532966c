"""Every write of API access, one module per sub-domain: ``tokens`` (issue, revoke,
authenticate), ``refusals`` (the audit of refused access, aggregated per address and
window; the staff member's actor) and ``idempotency`` (stored answers)."""

from access.services.idempotency import (
    StoredResponse,
    idempotency_fingerprint,
    idempotency_records_prune,
    idempotent_request_execute,
)
from access.services.refusals import (
    ANONYMOUS_ACTOR,
    api_authentication_failure_record,
    api_refusal_record,
    auth_failure_summaries_flush,
    auth_failure_summary_record,
    staff_access_record,
    staff_actor,
    staff_login_failure_record,
)
from access.services.tokens import (
    IssuedToken,
    agent_token_authenticate,
    agent_token_create,
    agent_token_revoke,
    agent_token_touch,
    token_hash,
    token_prefix_of,
)

__all__ = [
    "ANONYMOUS_ACTOR",
    "IssuedToken",
    "StoredResponse",
    "agent_token_authenticate",
    "agent_token_create",
    "agent_token_revoke",
    "agent_token_touch",
    "api_authentication_failure_record",
    "api_refusal_record",
    "auth_failure_summaries_flush",
    "auth_failure_summary_record",
    "idempotency_fingerprint",
    "idempotency_records_prune",
    "idempotent_request_execute",
    "staff_access_record",
    "staff_actor",
    "staff_login_failure_record",
    "token_hash",
    "token_prefix_of",
]
