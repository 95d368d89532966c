"""sergas_client's work queue calls and ``Worker`` against a live server (pytest-django's
live_server), and docs/agent_worker.py as a real process. Runs are started the way a
Celery worker starts them (``execution_claim``); agents are real HTTP clients."""

import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from access.services import agent_token_create
from audit.models import AuditEvent
from scheduling import services
from scheduling.models import AccountReview, RunBatch, ScheduleExecution
from sergas_client import (
    AccountResult,
    BatchReport,
    FatalBatchError,
    Lease,
    LeaseLost,
    Recommendation,
    SergasAPIError,
    SergasClient,
    Worker,
)
from sessions import services as session_services
from sessions.models import AgentSession
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[1]
AGENT_WORKER = ROOT / "docs" / "agent_worker.py"
QUEUE = "crm-reviewers"


def _agent_worker():
    spec = importlib.util.spec_from_file_location("agent_worker", AGENT_WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_queue_run(settings, *, accounts=4, batch_size=2, **review):
    """A started run of a review executed by agents on QUEUE."""
    settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "RUNNER_BATCH_SIZE": batch_size}
    review.setdefault("executor", f"queue:{QUEUE}")
    review.setdefault("account_filter", {"count": accounts})
    made = make_review(**review)
    execution = services.review_trigger_on_demand(made.pk)
    services.execution_claim(str(execution.pk))
    execution.refresh_from_db()
    return execution


def reviewed(lease: Lease) -> list[AccountResult]:
    return [
        AccountResult.reviewed(
            account,
            [Recommendation("upsell", "Offer the next tier", priority="high", confidence=0.8)],
            duration_ms=40,
            input_tokens=100,
            output_tokens=20,
            cost_usd=Decimal("0.0006"),
        )
        for account in lease.account_ids
    ]


class RecordingWorker(Worker):
    """A Worker that notes what happened to each batch."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("wait_seconds", 1)
        kwargs.setdefault("backoff_seconds", 0.01)
        super().__init__(*args, **kwargs)
        self.events: list[tuple[str, int, object]] = []

    def on_leased(self, lease):
        self.events.append(("leased", lease.batch_id, lease.attempt))

    def on_completed(self, lease, answer):
        self.events.append(("completed", lease.batch_id, answer.results))

    def on_failed(self, lease, error, state):
        self.events.append(("failed", lease.batch_id, state.status))

    def on_released(self, lease, state):
        self.events.append(("released", lease.batch_id, state.status))

    def on_lost(self, lease, reason):
        self.events.append(("lost", lease.batch_id, reason))

    def seen(self, kind):
        return [event[1:] for event in self.events if event[0] == kind]


def in_thread(worker: Worker, **run) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def token():
    return agent_token_create(name="queue-agent", scopes=["work"]).secret


@pytest.fixture
def api(live_server, token):
    with SergasClient(live_server.url, token, backoff_seconds=0.01) as client:
        yield client


class TestClient:
    def test_a_claim_leases_a_typed_batch_and_an_empty_queue_answers_none(self, api, settings):
        execution = start_queue_run(settings, accounts=2, metadata={"team": "emea"})
        lease = api.claim_batch(QUEUE, holder="host-1:42")
        assert api.claim_batch(QUEUE) is None  # its only batch is leased
        assert isinstance(lease, Lease)
        assert (lease.queue, lease.batch_index, lease.batch_count, lease.attempt) == (
            QUEUE,
            0,
            1,
            1,
        )
        assert lease.session_id == execution.session_id
        assert lease.run.execution_id == str(execution.pk)
        assert lease.run.metadata == {"team": "emea"}
        assert isinstance(lease.lease_expires_at, datetime)
        assert lease.heartbeat_seconds < lease.lease_seconds
        assert (lease.lost, lease.should_stop) == (False, False)
        assert RunBatch.objects.get(pk=lease.batch_id).holder == "host-1:42"
        assert api.heartbeat_batch(lease).lease_expires_at >= lease.lease_expires_at

    def test_a_complete_records_the_results_and_a_retry_replays_it(self, api, settings):
        execution = start_queue_run(settings, accounts=2)
        lease = api.claim_batch(QUEUE)
        first = api.complete_batch(lease, reviewed(lease), metrics={"api_call_count": 2})
        assert (first.status, first.results, first.recommendations) == ("done", 2, 2)
        assert (first.outcomes, first.replayed) == ({"reviewed": 2}, False)
        again = api.complete_batch(lease, reviewed(lease))
        assert again.replayed is True
        assert again.results == first.results
        kept = AccountReview.objects.filter(execution=execution)
        assert kept.count() == 2
        assert str(kept.first().cost_usd) == "0.000600"
        assert kept.first().recommendations[0]["priority"] == "high"

    def test_a_lost_lease_raises_lease_lost_with_its_reason_and_marks_the_lease(
        self, api, settings
    ):
        execution = start_queue_run(settings, accounts=2)
        lease = api.claim_batch(QUEUE)
        session_services.session_pause(execution.session_id, actor="staff:ana")
        with pytest.raises(LeaseLost) as excinfo:
            api.heartbeat_batch(lease)
        assert (excinfo.value.status_code, excinfo.value.code) == (409, "lease_lost")
        assert (excinfo.value.reason, excinfo.value.batch_id) == ("session_paused", lease.batch_id)
        assert (lease.lost, lease.lost_reason, lease.should_stop) == (True, "session_paused", True)
        with pytest.raises(LeaseLost):
            api.complete_batch(lease, reviewed(lease))
        assert not AccountReview.objects.exists()

    def test_fail_and_release_answer_the_batch_state(self, api, settings):
        start_queue_run(settings, accounts=2)
        lease = api.claim_batch(QUEUE)
        released = api.release_batch(lease)
        assert (released.status, released.attempt, released.attempts_left) == ("pending", 0, 3)
        again = api.claim_batch(QUEUE)
        failed = api.fail_batch(again, "LLM rate limited")
        assert (failed.status, failed.attempt, failed.attempts_left) == ("pending", 1, 2)
        with pytest.raises(LeaseLost) as excinfo:
            api.release_batch(again)
        assert excinfo.value.reason == "lease_expired"

    def test_a_long_poll_outlasts_the_clients_timeout(self, live_server, token):
        make_review(executor=f"queue:{QUEUE}")
        with SergasClient(live_server.url, token, timeout=0.5) as api:
            assert api.claim_batch(QUEUE, wait_seconds=1) is None


class TestWorker:
    def test_the_worker_completes_every_batch_of_a_run_and_the_results_are_kept(
        self, api, settings
    ):
        execution = start_queue_run(settings, accounts=6, batch_size=2)

        def handler(lease: Lease) -> BatchReport:
            event = {
                "event_id": str(uuid.uuid4()),
                "hook": "post_task",
                "name": "review_batch",
                "timestamp": lease.lease_expires_at.isoformat(),
                "invocation_id": str(uuid.uuid4()),
                "duration_ms": 5,
            }
            return BatchReport(reviewed(lease), events=[event], metrics={"api_call_count": 2})

        worker = RecordingWorker(api, QUEUE, handler)
        assert worker.run(max_batches=3) == 3
        batches = set(RunBatch.objects.filter(execution=execution).values_list("pk", flat=True))
        assert {batch for batch, _ in worker.seen("completed")} == batches
        assert [results for _, results in worker.seen("completed")] == [2, 2, 2]
        execution.refresh_from_db()
        assert (execution.status, execution.accounts_processed) == ("succeeded", 6)
        assert AgentSession.objects.get(pk=execution.session_id).status == "completed"
        kept = AccountReview.objects.filter(execution=execution)
        assert kept.count() == 6
        assert set(kept.values_list("agent", flat=True)) == {"queue-agent"}
        tasks = AuditEvent.objects.filter(session_id=execution.session_id, event_type="task")
        assert tasks.count() == 3
        claimed = AuditEvent.objects.filter(action="batch_claimed").first()
        assert claimed.metadata["holder"] == worker.holder

    def test_a_batch_whose_handler_raised_is_failed_and_done_on_its_next_attempt(
        self, api, settings
    ):
        execution = start_queue_run(settings, accounts=2)

        def flaky(lease: Lease) -> list[AccountResult]:
            if lease.attempt == 1:
                raise TimeoutError("CRM did not answer")
            return reviewed(lease)

        worker = RecordingWorker(api, QUEUE, flaky)
        assert worker.run(max_batches=2) == 2
        batch = RunBatch.objects.get(execution=execution)
        assert worker.seen("failed") == [(batch.pk, "pending")]
        assert worker.seen("completed") == [(batch.pk, 2)]
        assert (batch.status, batch.attempts) == ("done", 2)
        assert AuditEvent.objects.filter(action="batch_retried").count() == 1

    def test_a_fatal_batch_error_fails_the_run_at_once(self, api, settings):
        execution = start_queue_run(settings, accounts=2, max_retries=0)

        def broken(lease: Lease) -> list[AccountResult]:
            raise FatalBatchError("account data is corrupt")

        worker = RecordingWorker(api, QUEUE, broken)
        assert worker.run(max_batches=1) == 1
        assert worker.seen("failed") == [(RunBatch.objects.get(execution=execution).pk, "failed")]
        execution.refresh_from_db()
        assert execution.status == "failed"
        assert "FatalBatchError: account data is corrupt" in execution.error

    def test_a_pause_reaches_the_worker_through_its_heartbeat(self, api, settings):
        execution = start_queue_run(settings, accounts=2)
        started, finished = threading.Event(), threading.Event()
        seen: dict[str, object] = {}

        def slow(lease: Lease) -> list[AccountResult] | None:
            started.set()
            seen["stopped"] = lease.wait(30)
            seen["reason"] = lease.lost_reason
            finished.set()
            return None if lease.should_stop else reviewed(lease)

        worker = RecordingWorker(api, QUEUE, slow, heartbeat_seconds=0.2)
        thread = in_thread(worker)
        assert started.wait(10)
        session_services.session_pause(execution.session_id, actor="staff:ana")
        assert finished.wait(10)
        worker.stop()
        thread.join(10)
        assert not thread.is_alive()
        batch = RunBatch.objects.get(execution=execution)
        assert seen == {"stopped": True, "reason": "session_paused"}
        assert worker.seen("lost") == [(batch.pk, "session_paused")]
        assert worker.seen("released") == worker.seen("completed") == []
        assert (batch.status, batch.token) == ("pending", None)
        assert not AccountReview.objects.exists()

        session_services.session_resume(execution.session_id, actor="staff:ana")
        assert RecordingWorker(api, QUEUE, reviewed).run(max_batches=1) == 1
        execution.refresh_from_db()
        assert execution.status == "succeeded"

    def test_a_worker_stopped_during_a_claim_gives_back_the_batch_it_brings(
        self, live_server, token, settings
    ):
        make_review(executor=f"queue:{QUEUE}", account_filter={"count": 2})
        claiming = threading.Event()

        class Watched(httpx.HTTPTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                if request.url.path.endswith("/work/claim"):
                    claiming.set()
                return super().handle_request(request)

        handled: list[Lease] = []
        with SergasClient(live_server.url, token, transport=Watched()) as api:
            worker = RecordingWorker(api, QUEUE, handled.append, wait_seconds=10)
            thread = in_thread(worker)
            assert claiming.wait(10)
            worker.stop()
            execution = start_queue_run(settings, accounts=2)
            thread.join(15)
        assert not thread.is_alive()
        batch = RunBatch.objects.get(execution=execution)
        assert handled == []
        assert worker.seen("leased") == []
        assert worker.seen("released") == [(batch.pk, "pending")]
        assert (batch.status, batch.attempts) == ("pending", 0)

    def test_network_errors_and_5xx_during_claims_are_waited_out(
        self, live_server, token, settings
    ):
        start_queue_run(settings, accounts=2)

        class Flaky(httpx.HTTPTransport):
            """Two claims cannot connect, the third meets a 503."""

            def __init__(self) -> None:
                super().__init__()
                self.broken = 0

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                if request.url.path.endswith("/work/claim") and self.broken < 3:
                    self.broken += 1
                    if self.broken < 3:
                        raise httpx.ConnectError("connection refused", request=request)
                    return httpx.Response(503, json={"code": "unavailable", "detail": "busy"})
                return super().handle_request(request)

        transport = Flaky()
        with SergasClient(live_server.url, token, transport=transport, retries=0) as api:
            worker = RecordingWorker(api, QUEUE, reviewed)
            assert worker.run(max_batches=1) == 1
        assert transport.broken == 3
        assert [results for _, results in worker.seen("completed")] == [2]

    def test_a_queue_that_does_not_exist_or_is_not_allowed_is_a_clear_error(self, api, live_server):
        with pytest.raises(SergasAPIError) as excinfo:
            RecordingWorker(api, "nobody-uses-this", reviewed).run()
        assert (excinfo.value.status_code, excinfo.value.code) == (404, "queue_not_found")
        make_review(executor=f"queue:{QUEUE}")
        limited = agent_token_create(name="limited", scopes=["work"], queues=["elsewhere"])
        other = SergasClient(live_server.url, limited.secret)
        with other, pytest.raises(SergasAPIError) as excinfo:
            RecordingWorker(other, QUEUE, reviewed).run()
        assert (excinfo.value.status_code, excinfo.value.code) == (403, "queue_not_allowed")


class TestAgentWorkerScript:
    def test_the_example_worker_completes_batches_until_max_batches(
        self, live_server, token, settings, capsys
    ):
        execution = start_queue_run(settings, accounts=4)
        argv = ["--url", live_server.url, "--token", token, "--queue", QUEUE]
        assert _agent_worker().main([*argv, "--wait-seconds", "1", "--max-batches", "2"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in lines] == [
            "leased",
            "completed",
            "leased",
            "completed",
            "stopped",
        ]
        batches = RunBatch.objects.filter(execution=execution).order_by("index")
        assert lines[1] == f"completed batch={batches[0].pk} results=2"
        token_of_first = lines[0].split("token=")[1].split()[0]
        assert (
            lines[0] == f"leased batch={batches[0].pk} token={token_of_first} accounts=2 attempt=1"
        )
        execution.refresh_from_db()
        assert execution.status == "succeeded"
        first = AccountReview.objects.filter(execution=execution).first()
        again = _agent_worker().review_account(first.account_id)
        assert first.recommendations_count == len(again.recommendations)
        assert first.input_tokens == again.input_tokens

    def test_sigterm_mid_batch_gives_the_batch_back_and_exits_0(self, live_server, token, settings):
        execution = start_queue_run(settings, accounts=2)
        process = subprocess.Popen(
            [
                sys.executable,
                str(AGENT_WORKER),
                *("--url", live_server.url, "--token", token, "--queue", QUEUE),
                *("--wait-seconds", "1", "--batch-seconds", "60", "--heartbeat-seconds", "0.5"),
            ],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            leased = lines.get(timeout=30)
            batch = RunBatch.objects.get(execution=execution)
            assert leased.startswith(f"leased batch={batch.pk} token={batch.token} accounts=2")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        rest = []
        while (line := lines.get(timeout=5)) is not None:
            rest.append(line)
        assert rest == [f"released batch={batch.pk}", "stopped"]
        batch.refresh_from_db()
        assert (batch.status, batch.token, batch.attempts) == ("pending", None, 0)
        assert not AccountReview.objects.exists()
        assert ScheduleExecution.objects.get(pk=execution.pk).status == "running"
