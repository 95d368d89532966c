"""Agents as separate OS processes that speak only HTTP take scheduled work from a queue.

Each agent is ``docs/agent_worker.py`` (sergas_client.Worker) in a process of its own,
against a running server: pytest-django's live server, or gunicorn on a veth address
when the agent runs in a network namespace of its own. The server's settings are the
test's (the live server runs in this process), so leases here last seconds, not a
minute.
"""

import signal
import subprocess
import sys
import time

import httpx
import pytest
from django.urls import reverse

from access.services import agent_token_create
from bench.harness import free_port
from scheduling import services
from scheduling.models import AccountReview, RunBatch, ScheduleExecution
from scheduling.wakeups import wakeups
from sessions import services as session_services
from sessions.models import AgentSession
from sessions.state import SessionMetrics
from tests.drills.servers import Gunicorn
from tests.processes import child_database_url
from tests.scheduling.agent_processes import AgentProcess, NetworkNamespace
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUEUE = "crm-reviewers"


@pytest.fixture
def queue_settings(settings):
    settings.SERGAS_SCHEDULING = {
        **settings.SERGAS_SCHEDULING,
        "RUNNER_BATCH_SIZE": 3,
        "WORK_LEASE_SECONDS": 3,
    }
    return settings


@pytest.fixture
def agents(tmp_path, live_server):
    """``agents(name, *args)`` starts an agent process; all are killed at the end."""
    started: list[AgentProcess] = []

    def start(
        name: str = "crm-agent", *args: str, url: str | None = None, prefix=()
    ) -> AgentProcess:
        token = agent_token_create(name=name, scopes=["work"], queues=[QUEUE]).secret
        agent = AgentProcess(
            tmp_path,
            url=url or live_server.url,
            token=token,
            queue=QUEUE,
            args=("--wait-seconds", "5", "--heartbeat-seconds", "0.5", "--holder", name, *args),
            prefix=tuple(prefix),
        )
        agent.token = token  # type: ignore[attr-defined]
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        agent.kill()


def start_run(accounts: int = 9, **review) -> ScheduleExecution:
    """A queue-executed run, started as a Celery worker starts it."""
    made = make_review(executor=f"queue:{QUEUE}", account_filter={"count": accounts}, **review)
    execution = services.review_trigger_on_demand(made.pk)
    services.execution_claim(str(execution.pk))
    execution.refresh_from_db()
    return execution


def succeeded(execution: ScheduleExecution) -> bool:
    return ScheduleExecution.objects.get(pk=execution.pk).status == "succeeded"


def counted_once(execution: ScheduleExecution, accounts: int) -> None:
    """Every account has exactly one result and one processing time: nothing twice."""
    assert AccountReview.objects.filter(execution=execution).count() == accounts
    session = AgentSession.objects.get(pk=execution.session_id)
    assert len(SessionMetrics.load(session.metrics).account_processing_times_ms) == accounts


def test_a_queue_run_is_done_by_an_agent_process_and_its_results_are_shown(
    queue_settings, agents, live_server, admin_client
):
    execution = start_run(accounts=9)
    agent = agents()
    wait_for(lambda: succeeded(execution), what="the agent to finish the run")
    assert len(agent.wait_for("completed", count=3)) == 3  # its last answer may lag the commit
    counted_once(execution, 9)
    assert set(AccountReview.objects.values_list("agent", flat=True)) == {"crm-agent"}

    reader = agent_token_create(name="reader", scopes=["read"]).secret
    results = httpx.get(
        f"{live_server.url}/api/v1/schedules/{execution.review_id}/executions/"
        f"{execution.pk}/results",
        headers={"Authorization": f"Bearer {reader}"},
    ).json()["items"]
    assert len(results) == 9
    assert all(item["outcome"] in ("reviewed", "failed", "skipped") for item in results)
    page = admin_client.get(reverse("dashboard:run", args=[execution.pk])).content.decode()
    assert all(item["account_id"] in page for item in results)


def test_an_agent_killed_mid_batch_loses_nothing_and_its_late_token_is_refused(
    queue_settings, agents, live_server
):
    execution = start_run(accounts=6)
    doomed = agents("doomed-agent", "--batch-seconds", "60")
    [lease] = doomed.wait_for("leased")
    doomed.kill()  # SIGKILL mid-batch: no release, no last heartbeat

    rescuer = agents("rescuer-agent")
    wait_for(lambda: succeeded(execution), timeout=60, what="the rescuer to finish the run")
    taken = RunBatch.objects.get(pk=int(lease["batch"]))
    assert taken.attempts == 2
    assert taken.holder == "rescuer-agent"
    counted_once(execution, 6)
    assert set(AccountReview.objects.values_list("agent", flat=True)) == {"rescuer-agent"}

    # The dead agent's late answer (a network that delivered it after all) is fenced.
    late = httpx.post(
        f"{live_server.url}/api/v1/work/{lease['batch']}/complete",
        headers={"Authorization": f"Bearer {doomed.token}"},
        json={
            "token": lease["token"],
            "results": [
                {"account_id": account, "outcome": "reviewed"} for account in taken.account_ids
            ],
        },
    )
    assert (late.status_code, late.json()["reason"]) == (409, "taken_over")
    counted_once(execution, 6)
    assert rescuer.wait_for("completed")


def test_pause_and_cancel_reach_the_agent_through_its_heartbeat(queue_settings, agents):
    execution = start_run(accounts=3)
    agent = agents("crm-agent", "--batch-seconds", "30")
    [lease] = agent.wait_for("leased")
    session_services.session_pause(execution.session_id, actor="staff:ana")
    [lost] = agent.wait_for("lost")
    assert lost == {"batch": lease["batch"], "reason": "session_paused"}
    assert RunBatch.objects.get(pk=int(lease["batch"])).status == "pending"

    session_services.session_resume(execution.session_id, actor="staff:ana")
    agent.wait_for("leased", count=2)  # the same agent takes the batch again
    session_services.session_cancel(execution.session_id, actor="staff:ana")
    lost = agent.wait_for("lost", count=2)[1]
    assert lost["reason"] == "run_cancelled"
    assert not AccountReview.objects.filter(execution=execution).exists()
    assert ScheduleExecution.objects.get(pk=execution.pk).status == "failed"


def test_an_agent_takes_critical_runs_first_then_by_nominal_time(queue_settings, agents):
    low = start_run(accounts=3, name="low", priority="low")
    high = start_run(accounts=3, name="high", priority="high")
    critical = start_run(accounts=3, name="critical", priority="critical")
    agent = agents()
    agent.wait_for("completed", count=3)
    order = [
        RunBatch.objects.get(pk=int(event["batch"])).execution_id
        for event in agent.events("leased")
    ]
    assert order == [critical.pk, high.pk, low.pk]


def test_an_idle_agent_is_woken_by_new_work_not_by_its_poll_ending(queue_settings, agents):
    make_review(executor=f"queue:{QUEUE}", name="empty so far")
    agent = agents("idle-agent", "--wait-seconds", "30")
    deadline = time.monotonic() + 30
    while not wakeups().listening and time.monotonic() < deadline:
        time.sleep(0.05)  # its long poll started the server's listener
    time.sleep(0.5)  # and it waits on the empty queue
    seen = wakeups().generation(QUEUE)
    execution = start_run(accounts=3)
    [lease] = agent.wait_for("leased", timeout=25)  # before its 30 s poll ends
    batch = RunBatch.objects.get(pk=int(lease["batch"]))
    latency = (batch.started_at - batch.available_at).total_seconds()
    assert wakeups().generation(QUEUE) > seen  # a notification woke it
    assert latency < 25
    print(f"idle agent woken {latency * 1000:.0f} ms after the batch became claimable")  # noqa: T201
    wait_for(lambda: succeeded(execution), what="the run")


@pytest.fixture
def namespace():
    """A network namespace for the agent (root and iproute2 needed; skipped otherwise)."""
    try:
        created = NetworkNamespace().create()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"this machine does not allow network namespaces (ip netns): {detail}")
    yield created
    created.destroy()


def test_an_agent_in_its_own_network_namespace_does_the_work(
    queue_settings, agents, namespace, tmp_path, settings
):
    server = Gunicorn(
        free_port(),
        tmp_path,
        env={
            "DATABASE_URL": child_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "ALLOWED_HOSTS": namespace.host_address,
            "SCHEDULING_RUNNER_BATCH_SIZE": "3",
            "SCHEDULING_WORK_LEASE_SECONDS": "3",
            "SESSION_CACHE_KEY_PREFIX": settings.SERGAS_SESSIONS["CACHE_KEY_PREFIX"],
        },
        host=namespace.host_address,
    ).start()
    try:
        execution = start_run(accounts=6)
        agent = agents("remote-agent", url=server.url, prefix=namespace.run_inside())
        wait_for(lambda: succeeded(execution), timeout=60, what="the agent across the veth pair")
        assert len(agent.wait_for("completed", count=2)) == 2
        counted_once(execution, 6)
        assert set(AccountReview.objects.values_list("agent", flat=True)) == {"remote-agent"}
        # Only the veth pair joins it to us: this side's loopback is not reachable from it.
        probe = subprocess.run(
            [
                *namespace.run_inside(),
                sys.executable,
                "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {server.port}), 1)",
            ],
            capture_output=True,
            check=False,
        )
        assert probe.returncode != 0
    finally:
        server.stop()


def test_sigterm_makes_an_agent_give_its_batch_back(queue_settings, agents):
    execution = start_run(accounts=3)
    agent = agents("leaving-agent", "--batch-seconds", "30")
    [lease] = agent.wait_for("leased")
    agent.signal(signal.SIGTERM)
    assert agent.wait(30) == 0
    assert agent.events("released") == [{"batch": lease["batch"]}]
    assert "stopped" in agent.output()
    batch = RunBatch.objects.get(pk=int(lease["batch"]))
    assert (batch.status, batch.token) == ("pending", None)
    agents("next-agent")
    wait_for(lambda: succeeded(execution), what="another agent to finish")


def test_a_claim_whose_agent_died_while_waiting_leases_nothing(queue_settings, agents):
    """The server learns of a dead agent only when it answers; its long poll, woken by
    new work, sees the client gone and takes nothing (else the batch would wait out a
    lease for nobody)."""
    make_review(executor=f"queue:{QUEUE}", name="empty so far")
    doomed = agents("doomed-agent", "--wait-seconds", "30")
    deadline = time.monotonic() + 30
    while not wakeups().listening and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)  # its claim waits on the empty queue
    doomed.kill()
    execution = start_run(accounts=3)
    time.sleep(1)  # the dead poll is woken, and lets the batch be
    batch = RunBatch.objects.get(execution=execution)
    assert (batch.status, batch.holder) == ("pending", "")
    agents("live-agent")
    wait_for(lambda: succeeded(execution), what="a live agent to take the batch")
    assert RunBatch.objects.get(pk=batch.pk).attempts == 1
