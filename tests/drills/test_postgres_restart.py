"""Drill: PostgreSQL stopped and started again under API load, with gunicorn serving.

The drill runs its own PostgreSQL (the embedded server, in a temporary directory), so the
machine's server is never touched. While it is down every request must fail fast with
503 and the JSON error form (never a hang, never a traceback); once it is back the
service must answer again within seconds, with no manual step, and every write that was
acknowledged before or after the outage must be there. A session's detail may still be
served from the read cache while the database is down; nothing else may answer.
"""

import time
import uuid

import httpx
import pytest
from django.conf import settings

from kernel.availability import DATABASE_UNAVAILABLE
from tests.drills.load import Agent, Load
from tests.drills.servers import Gunicorn, PostgresServer, manage

pytestmark = pytest.mark.drill

PORT = 8011
CLIENTS = 8
DOWN_SECONDS = 6
# connect_timeout is 5 s; a refused connection fails at once. Nothing may take longer.
SLOWEST_ANSWER_SECONDS = 6
RECOVERY_BOUND_SECONDS = 10


def _agent_loop(agent: Agent, index: int) -> None:
    state = agent.state
    if "session" not in state:
        created = agent.call(
            "create",
            "POST",
            "/api/v1/sessions",
            json={"orchestrator_id": f"drill-{index}", "account_ids": [f"a{index}"]},
        )
        if created.status == 201:
            state["session"] = created.body["session_id"]
            state["acknowledged"] = set()
        else:
            time.sleep(0.05)
        return
    session = state["session"]
    if not state.get("started"):
        started = agent.call("start", "POST", f"/api/v1/sessions/{session}/start")
        state["started"] = started.status == 200
        return
    state["n"] = step = state.get("n", 0) + 1
    if step % 4 == 0:
        outcome = agent.call("get", "GET", f"/api/v1/sessions/{session}")
    elif step % 4 == 1:
        account = f"acct_{index}_{step}"
        outcome = agent.call(
            "update_context",
            "PATCH",
            f"/api/v1/sessions/{session}/context",
            json={"changes": {"processed_accounts": [account]}},
        )
        if outcome.status == 200:
            state["acknowledged"].add(account)
    elif step % 4 == 2:
        outcome = agent.call("heartbeat", "POST", f"/api/v1/sessions/{session}/heartbeat")
    elif step % 20 == 3:
        outcome = agent.call("healthz", "GET", "/healthz")
    else:
        outcome = agent.call("list", "GET", "/api/v1/sessions", params={"limit": 5})
    time.sleep(0.02 if outcome.status and outcome.status < 500 else 0.05)


def test_postgresql_restarted_under_api_load(tmp_path, drill_report):
    postgres = PostgresServer(tmp_path)
    postgres.start()
    prefix = f"drill-{uuid.uuid4().hex[:8]}"
    env = {
        "DATABASE_URL": postgres.url,
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": prefix,
        "SESSION_CACHE_KEY_PREFIX": prefix,
        "API_THROTTLE_RATE": "1000000/min",
        "DATABASE_CONN_MAX_AGE": "60",
    }
    manage("migrate", "--noinput", env=env)
    token = manage("create_agent_token", "drill-agent", "--scopes", "write", env=env).strip()
    server = Gunicorn(PORT, tmp_path, env).start()
    load = Load(server.url, token, max_seconds=120)
    try:
        load.start(CLIENTS, _agent_loop)
        time.sleep(3)
        postgres.stop("fast")  # returns once the server is down (pg_ctl -w)
        stopped_at = time.monotonic()  # requests sent before may still have been served
        time.sleep(DOWN_SECONDS)
        starting_at = time.monotonic()  # from here requests may be served as it comes up
        postgres.start()
        back_at = time.monotonic()
        deadline = back_at + 30
        while time.monotonic() < deadline:
            if any(o.status == 200 and o.at > back_at for o in load.outcomes):
                break
            time.sleep(0.1)
        time.sleep(5)
        load.stop()
        lost = _acknowledged_updates_lost(server.url, token, load)
    finally:
        load.stop()
        server.stop()
        postgres.close()

    outcomes = load.outcomes
    before = [o for o in outcomes if o.at < stopped_at]
    during = [o for o in outcomes if stopped_at <= o.at < starting_at]
    after = [o for o in outcomes if o.at >= back_at]
    first_ok = min((o.at + o.elapsed for o in after if o.status == 200), default=None)
    settled = back_at + RECOVERY_BOUND_SECONDS
    failing_after = [o for o in after if o.at >= settled and o.status not in (200, 201)]

    drill_report.note("clients", CLIENTS)
    drill_report.note("requests", len(outcomes))
    drill_report.note("before the stop (status: count)", _tally(before))
    drill_report.note("while down (status: count)", _tally(during))
    drill_report.note("after the start (status: count)", _tally(after))
    drill_report.note("slowest answer while down", f"{max(o.elapsed for o in during):.3f} s")
    drill_report.note("postgres down for", f"{back_at - stopped_at:.1f} s")
    drill_report.note(
        "first success after postgres returned",
        f"{first_ok - back_at:.2f} s" if first_ok else "never",
    )
    drill_report.note("failures later than the recovery bound", len(failing_after))
    drill_report.note("acknowledged context updates lost", lost)
    drill_report.note("tracebacks in the server log", server.log().count("Traceback"))

    assert before
    assert during
    assert after
    assert all(o.status is not None for o in outcomes), "a request hung or lost its connection"
    assert not [o for o in outcomes if o.status == 500], "a 500 escaped"
    assert max(o.elapsed for o in during) < SLOWEST_ANSWER_SECONDS
    # A session's detail is read from the read cache (a verified token needs no database
    # either, since issue 13): those may still answer 200. Everything else needs
    # PostgreSQL and must be refused.
    cached_reads = [o for o in during if o.op == "get" and o.status == 200]
    drill_report.note("session details served from the cache while down", len(cached_reads))
    refused = [o for o in during if o.status == 503]
    answered = sorted({(o.op, o.status) for o in during if o.status != 503})
    assert {op for op, _ in answered} <= {"get"}, answered
    assert len(refused) + len(cached_reads) == len(during)
    for outcome in refused:
        if outcome.op == "healthz":
            assert outcome.body["checks"]["database"]["ok"] is False
        else:
            assert outcome.body == {"code": "database_unavailable", "detail": DATABASE_UNAVAILABLE}
    assert not [o for o in outcomes if "Traceback" in str(o.body)]
    assert first_ok is not None
    assert first_ok - back_at < RECOVERY_BOUND_SECONDS
    assert not failing_after, failing_after[:5]
    assert lost == 0


def _acknowledged_updates_lost(url: str, token: str, load: Load) -> int:
    """Every 200 to a context update must be in the session's context now."""
    lost = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        for agent in load.agents:
            if "session" not in agent.state:
                continue
            context = http.get(f"/api/v1/sessions/{agent.state['session']}").json()["context"]
            lost += len(agent.state["acknowledged"] - set(context["processed_accounts"]))
    return lost


def _tally(outcomes) -> dict:
    counts: dict = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: str(item[0])))
