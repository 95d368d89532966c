"""Sessions in any status, made through the services (so their audit trail is real)."""

from typing import Any

from sessions import services
from sessions.models import AgentSession

# The shortest service path to each status.
_PATHS: dict[str, list[str]] = {
    "pending": [],
    "running": ["start"],
    "paused": ["start", "pause"],
    "completed": ["start", "complete"],
    "failed": ["start", "fail"],
    "interrupted": ["start", "interrupt"],
    "cancelled": ["cancel"],
}


def make_session(status: str = "pending", **create_kwargs: Any) -> AgentSession:
    create_kwargs.setdefault("orchestrator_id", "orch-test")
    create_kwargs.setdefault("account_ids", ["acct_1", "acct_2", "acct_3"])
    create_kwargs.setdefault("owner_id", "owner_1")
    session = services.session_create(**create_kwargs)
    for step in _PATHS[status]:
        if step == "fail":
            services.session_fail(session.session_id, error="boom")
        else:
            getattr(services, f"session_{step}")(session.session_id)
    return AgentSession.objects.get(pk=session.session_id)
