"""A small typed client of the Sergas API for agents. It needs only httpx, not Django.

    with SergasClient("https://sergas.example", token) as api:
        session = api.create_session(orchestrator_id="nightly", account_ids=["a1"])
        api.start(session.session_id)
        with api.recorder(session.session_id) as hooks, hooks.tool("crm.get_account"):
            ...
        api.complete(session.session_id)

See docs/api.md and docs/example_agent.py.
"""

from sergas_client.client import SergasAPIError, SergasClient
from sergas_client.recorder import EventRecorder, Invocation
from sergas_client.types import Checkpoint, EventsResult, Heartbeat, Session

__all__ = [
    "Checkpoint",
    "EventRecorder",
    "EventsResult",
    "Heartbeat",
    "Invocation",
    "SergasAPIError",
    "SergasClient",
    "Session",
]
