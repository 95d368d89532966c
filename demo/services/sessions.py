"""Demo data for ``manage.py seed_demo``: sessions in every status, with their audit trail.

Everything is created through the services, so the demo trail is a real one. Ids are
fixed, so seeding twice changes nothing.
"""

import random
from collections.abc import Callable

from django.db import transaction

from sessions import services
from sessions.models import AgentSession, SessionType

DEMO_ACTOR = "command:seed_demo"

# (suffix, final status, session type): one story per status an operator will meet.
_DEMO_SESSIONS = [
    ("001", "completed", SessionType.SCHEDULED),
    ("002", "completed", SessionType.SCHEDULED),
    ("003", "completed", SessionType.ON_DEMAND),
    ("004", "failed", SessionType.SCHEDULED),
    ("005", "running", SessionType.SCHEDULED),
    ("006", "running", SessionType.ON_DEMAND),
    ("007", "paused", SessionType.MANUAL),
    ("008", "interrupted", SessionType.SCHEDULED),
    ("009", "cancelled", SessionType.MANUAL),
    ("010", "pending", SessionType.ON_DEMAND),
    ("011", "pending", SessionType.SCHEDULED),
    ("012", "completed", SessionType.RECOVERY),
]


def demo_sessions_seed(on_progress: Callable[[str], None] | None = None) -> int:
    """Create the demo sessions that do not exist yet; returns how many were created."""
    created = 0
    for suffix, final_status, session_type in _DEMO_SESSIONS:
        session_id = f"session_demo_{suffix}"
        if not AgentSession.objects.filter(pk=session_id).exists():
            with transaction.atomic():
                _play(session_id, final_status, session_type, random.Random(suffix))
            created += 1
        if on_progress is not None:
            on_progress(session_id)
    return created


def _play(session_id: str, final_status: str, session_type: str, rng: random.Random) -> None:
    owner = f"owner_{rng.randint(1, 50):02d}"
    accounts = [f"acct_{rng.randint(10000, 99999)}" for _ in range(rng.randint(6, 24))]
    batch_size = 4
    batches = [accounts[i : i + batch_size] for i in range(0, len(accounts), batch_size)]
    services.session_create(
        session_id=session_id,
        orchestrator_id="demo-orchestrator",
        session_type=session_type,
        account_ids=accounts,
        owner_id=owner,
        context={"total_batches": len(batches)},
        actor=DEMO_ACTOR,
    )
    if final_status == "pending":
        return
    services.session_start(session_id, actor=DEMO_ACTOR)
    done = len(batches) if final_status in {"completed", "failed"} else len(batches) // 2
    for number, batch in enumerate(batches[: max(done, 1)], start=1):
        failed = [account for account in batch if rng.random() < 0.1]
        services.session_update_metrics(
            session_id,
            counters={
                "api_call_count": 3 * len(batch),
                "token_usage": rng.randint(800, 4000),
                "cache_hits": rng.randint(0, len(batch)),
                "error_count": len(failed),
            },
            processing_times_ms=[rng.randint(300, 2500) for _ in batch],
            actor=DEMO_ACTOR,
        )
        services.session_checkpoint(
            session_id,
            context_changes={
                "current_batch": number,
                "processed_accounts": [a for a in batch if a not in failed],
                "failed_accounts": failed,
                "recommendations_count": number * rng.randint(1, 3),
            },
            actor=DEMO_ACTOR,
        )
    if session_id == "session_demo_006":
        # An agent waiting on staff: the overview's "Needs a decision".
        services.approval_request(
            session_id,
            question=f"Send the renewal offer to {accounts[0]}'s buyer?",
            options=["send", "hold"],
            payload={
                "recommendation": "Renew at a 5% discount: usage grew 40% this quarter.",
                "email": "Dear Ms. Laurent, thank you for another year with us ...",
            },
            actor=DEMO_ACTOR,
        )
    if final_status == "completed":
        services.session_complete(session_id, actor=DEMO_ACTOR)
    elif final_status == "failed":
        services.session_fail(
            session_id, error="CRM API returned 503 for 3 retries", actor=DEMO_ACTOR
        )
    elif final_status == "paused":
        services.session_pause(session_id, reason="owner asked to hold", actor=DEMO_ACTOR)
    elif final_status == "interrupted":
        services.session_interrupt(session_id, reason="worker lost", actor=DEMO_ACTOR)
    elif final_status == "cancelled":
        services.session_cancel(session_id, reason="duplicate run", actor=DEMO_ACTOR)
