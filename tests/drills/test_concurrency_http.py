"""Drill: many HTTP clients race conflicting transitions and state updates on one session.

It runs in ``make test`` (a few seconds): the live server answers each request in its own
thread with its own database connection, as gunicorn's threads would. Three rounds are
released at once, each mixing transition attempts with context and metrics updates:
six pauses, then six resumes, then complete/cancel/fail against each other. In each
round exactly one transition wins and the others get 409 naming the current status;
every acknowledged update is in the final state; the audit trail holds versions
1..version and one lifecycle event per winning transition.
"""

import threading
from collections import Counter

import httpx
import pytest

from access.services import agent_token_create
from audit.models import AuditEvent
from sessions.models import AgentSession
from sessions.state import SessionContext, SessionMetrics
from tests.drills.report import DrillReport

pytestmark = pytest.mark.django_db(transaction=True)

UPDATERS = 12
ROUNDS = [
    ["pause"] * 6,
    ["resume"] * 6,
    # From running each of these ends the session, so after any one none of the others may.
    ["complete", "cancel", "fail"] * 3,
]


def _race(url: str, token: str, session_id: str, actions: list[str], round_no: int) -> dict:
    """Release every transition and updater at once; return what each got."""
    barrier = threading.Barrier(len(actions) + UPDATERS)
    results: dict = {"transitions": [], "updates": [], "metrics": []}
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"}

    def transition(action: str) -> None:
        body = {"error": "drill"} if action == "fail" else {}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            barrier.wait()
            response = http.post(f"/api/v1/sessions/{session_id}/{action}", json=body)
        with lock:
            results["transitions"].append((action, response.status_code, response.json()))

    def updater(index: int) -> None:
        account = f"r{round_no}-u{index}"
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            barrier.wait()
            context = http.patch(
                f"/api/v1/sessions/{session_id}/context",
                json={"changes": {"processed_accounts": [account]}},
            )
            metrics = http.post(
                f"/api/v1/sessions/{session_id}/metrics",
                json={"counters": {"api_call_count": 1}, "processing_times_ms": [index]},
            )
        with lock:
            results["updates"].append((account, context.status_code, context.json()))
            results["metrics"].append((index, metrics.status_code, metrics.json()))

    threads = [threading.Thread(target=transition, args=(a,)) for a in actions]
    threads += [threading.Thread(target=updater, args=(i,)) for i in range(UPDATERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_clients_racing_transitions_and_updates_over_http(live_server):
    report = DrillReport("concurrent clients on one session over HTTP")
    token = agent_token_create(name="drill-racer", scopes=["write"]).secret
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        session_id = api.post("/api/v1/sessions", json={"orchestrator_id": "race"}).json()[
            "session_id"
        ]
        assert api.post(f"/api/v1/sessions/{session_id}/start").status_code == 200

    acknowledged_accounts: set[str] = set()
    acknowledged_times: list[int] = []
    winners = []
    refused_updates = Counter()
    for round_no, actions in enumerate(ROUNDS, start=1):
        results = _race(live_server.url, token, session_id, actions, round_no)
        won = [(a, body) for a, status, body in results["transitions"] if status == 200]
        lost = [(a, status, body) for a, status, body in results["transitions"] if status != 200]
        report.count("requests", len(actions) + 2 * UPDATERS)
        report.count("transitions attempted", len(actions))
        report.count("transitions refused with 409", len(lost))
        assert len(won) == 1, results["transitions"]
        winners.append(won[0][0])
        for _action, status, body in lost:
            assert status == 409
            assert body["code"] == "invalid_transition"
            assert body["status"] == won[0][1]["status"]
        for account, status, body in results["updates"]:
            if status == 200:
                acknowledged_accounts.add(account)
            else:
                assert (status, body["code"]) == (409, "session_not_running")
                refused_updates[body["code"]] += 1
        for index, status, _body in results["metrics"]:
            if status == 200:
                acknowledged_times.append(index)

    session = AgentSession.objects.get(pk=session_id)
    context = SessionContext.load(session.context)
    metrics = SessionMetrics.load(session.metrics)
    trail = AuditEvent.objects.filter(session_id=session_id)
    versions = sorted(trail.values_list("metadata__version", flat=True))
    lifecycle = list(
        trail.filter(event_type="session_lifecycle")
        .order_by("timestamp")
        .values_list("action", flat=True)
    )

    report.note("winning transition per round", winners)
    report.note("context updates acknowledged", len(acknowledged_accounts))
    report.note("updates refused after the session ended", dict(refused_updates))
    report.note(
        "acknowledged updates missing from the final state",
        len(acknowledged_accounts - context.processed_accounts),
    )
    report.note("metrics posts acknowledged", len(acknowledged_times))
    report.note("audit events", trail.count())
    report.note("versions in the trail", f"1..{versions[-1]} of {session.version}")
    report.note("lifecycle events", lifecycle)
    report.print()

    assert context.processed_accounts == acknowledged_accounts
    assert metrics.api_call_count == len(acknowledged_times)
    assert sorted(metrics.account_processing_times_ms) == sorted(acknowledged_times)
    assert versions == list(range(1, session.version + 1))
    assert lifecycle == ["create", "start", *winners]
    assert session.status != "running"
