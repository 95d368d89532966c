"""Every committed change has exactly one audit event, under random and concurrent load."""

import random
from collections import Counter
from collections.abc import Callable

import pytest

from audit.models import AuditEvent
from kernel.errors import DomainError
from sessions import services
from sessions.models import TERMINAL_STATUSES, AgentSession

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = 16


def _operations(session_id: str, rng: random.Random) -> list[tuple[str, Callable[[], object]]]:
    account = f"acct_{rng.randint(1, 40)}"
    return [
        ("start", lambda: services.session_start(session_id)),
        ("pause", lambda: services.session_pause(session_id, reason="r")),
        ("resume", lambda: services.session_resume(session_id)),
        ("complete", lambda: services.session_complete(session_id)),
        ("fail", lambda: services.session_fail(session_id, error="e")),
        ("cancel", lambda: services.session_cancel(session_id)),
        ("interrupt", lambda: services.session_interrupt(session_id)),
        ("recover", lambda: services.session_recover(session_id)),
        (
            "update_context",
            lambda: services.session_update_context(
                session_id, changes={"processed_accounts": [account]}
            ),
        ),
        (
            "update_metrics",
            lambda: services.session_update_metrics(
                session_id, counters={"api_call_count": 1}, processing_times_ms=[5]
            ),
        ),
        ("checkpoint", lambda: services.session_checkpoint(session_id)),
        ("heartbeat", lambda: services.session_heartbeat(session_id)),
    ]


# Lifecycle actions are rare enough that sessions stay alive for the other operations.
_WEIGHTS = [3, 2, 2, 1, 0.3, 0.3, 1, 2, 6, 6, 4, 3]


def _drive(pool: list[str], count: int, seed: int) -> Counter:
    """Run ``count`` random operations on sessions of ``pool``; a session that ends is
    replaced by a new one. Returns successes per (session, action)."""
    rng = random.Random(seed)
    done: Counter = Counter()
    for _ in range(count):
        slot = rng.randrange(len(pool))
        session_id = pool[slot]
        name, operation = rng.choices(_operations(session_id, rng), weights=_WEIGHTS)[0]
        try:
            operation()
        except DomainError as exc:
            if exc.context.get("status") in TERMINAL_STATUSES:
                pool[slot] = services.session_create(orchestrator_id="audit-proof").session_id
                done[(pool[slot], "create")] += 1
            continue
        if name != "heartbeat":  # liveness only: no version, no event
            done[(session_id, name)] += 1
    return done


def test_the_audit_trail_matches_every_committed_change_exactly(run_concurrently):
    pool = [
        services.session_create(orchestrator_id="audit-proof").session_id for _ in range(SESSIONS)
    ]
    expected = Counter({(session_id, "create"): 1 for session_id in pool})
    expected += _drive(pool, 300, seed=1)
    for counts in run_concurrently(
        [lambda seed=seed: _drive(pool, 80, seed=seed) for seed in range(2, 6)]
    ):
        assert isinstance(counts, Counter), counts
        expected += counts
    session_ids = sorted({session_id for session_id, _ in expected})

    events = list(AuditEvent.objects.filter(session_id__in=session_ids).order_by("timestamp"))
    recorded = Counter((event.session_id, event.action) for event in events)
    assert recorded == expected
    assert sum(expected.values()) > 300

    for session_id in session_ids:
        session = AgentSession.objects.get(pk=session_id)
        trail = sorted(
            (e for e in events if e.session_id == session_id),
            key=lambda e: e.metadata["version"],
        )
        # One event per version, none missing, none doubled.
        assert [e.metadata["version"] for e in trail] == list(range(1, session.version + 1))
        # Replaying the lifecycle events reproduces the current status.
        status = None
        for event in trail:
            if event.event_type == "session_lifecycle":
                assert event.metadata.get("from", None) == status
                status = event.metadata["to"]
        assert status == session.status
