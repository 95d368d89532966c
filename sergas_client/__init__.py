"""A small typed client of the Sergas API for agents. It needs only httpx, not Django.

    with SergasClient("https://sergas.example", token) as api:
        session = api.create_session(orchestrator_id="nightly", account_ids=["a1"])
        api.start(session.session_id)
        with api.recorder(session.session_id) as hooks, hooks.tool("crm.get_account"):
            ...
        api.complete(session.session_id)

Agents that take scheduled work from a queue run a ``Worker``:

    with SergasClient("https://sergas.example", token) as api:
        Worker(api, "crm-reviewers", review_batch).run()

An agent that needs a person's decision asks and waits:

    approval = api.request_approval(session_id, question="Send?", options=["send", "hold"])
    approval = api.wait_for_approval(approval.approval_id)

See docs/api.md, docs/example_agent.py and docs/agent_worker.py.
"""

from sergas_client.client import LeaseLost, SergasAPIError, SergasClient
from sergas_client.recorder import EventRecorder, Invocation
from sergas_client.types import (
    AccountResult,
    Approval,
    ApprovalNotice,
    BatchState,
    Checkpoint,
    CompletedBatch,
    EventsResult,
    Execution,
    Heartbeat,
    Lease,
    LeasedRun,
    LeaseRenewal,
    Outcome,
    Priority,
    Recommendation,
    Schedule,
    Session,
)
from sergas_client.worker import BatchReport, FatalBatchError, Worker

__all__ = [
    "AccountResult",
    "Approval",
    "ApprovalNotice",
    "BatchReport",
    "BatchState",
    "Checkpoint",
    "CompletedBatch",
    "EventRecorder",
    "EventsResult",
    "Execution",
    "FatalBatchError",
    "Heartbeat",
    "Invocation",
    "Lease",
    "LeaseLost",
    "LeaseRenewal",
    "LeasedRun",
    "Outcome",
    "Priority",
    "Recommendation",
    "Schedule",
    "SergasAPIError",
    "SergasClient",
    "Session",
    "Worker",
]
