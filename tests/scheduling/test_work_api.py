"""/api/v1/work: the work queue protocol through HTTP, against PostgreSQL.

Runs are started the way a worker starts them (``execution_claim``); agents are the
Django test client here. Agents as real OS processes are in test_agents.py.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from scheduling import services
from scheduling.exceptions import QUEUE_NOT_FOUND
from scheduling.models import AccountReview, RunBatch, ScheduleExecution
from sessions import services as session_services
from sessions.models import AgentSession
from sessions.state import SessionContext, SessionMetrics
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db

QUEUE = "crm-reviewers"


def start_queue_run(*, accounts: int = 4, batch_size: int = 2, settings=None, **review):
    """A started run of a review executed by agents on QUEUE."""
    if settings is not None:
        settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "RUNNER_BATCH_SIZE": batch_size}
    review.setdefault("executor", f"queue:{QUEUE}")
    review.setdefault("account_filter", {"count": accounts})
    made = make_review(**review)
    execution = services.review_trigger_on_demand(made.pk)
    services.execution_claim(str(execution.pk))
    execution.refresh_from_db()
    return made, execution


def result(account, outcome="reviewed", **fields):
    body = {"account_id": account, "outcome": outcome, **fields}
    if outcome == "reviewed":
        body.setdefault(
            "recommendations",
            [
                {
                    "kind": "upsell",
                    "title": "Offer the next tier",
                    "priority": "high",
                    "confidence": 0.8,
                }
            ],
        )
        body.setdefault("input_tokens", 100)
        body.setdefault("output_tokens", 20)
        body.setdefault("cost_usd", "0.0006")
    if outcome == "failed":
        body.setdefault("error", "CRM timeout")
    body.setdefault("duration_ms", 40)
    return body


def claim(api, queue=QUEUE, **body):
    return api.post("/work/claim", {"queue": queue, **body})


def complete(api, lease, results=None, **body):
    results = results if results is not None else [result(a) for a in lease["account_ids"]]
    return api.post(
        f"/work/{lease['batch_id']}/complete",
        {"token": lease["lease_token"], "results": results, **body},
    )


@pytest.fixture
def worker_api(agent_api):
    return agent_api("work", name="crm-agent")


class TestClaim:
    def test_a_claim_leases_the_first_batch_with_its_run_and_accounts(self, worker_api, settings):
        review, execution = start_queue_run(settings=settings, metadata={"team": "emea"})
        response = claim(worker_api)
        assert response.status_code == 200, response.content
        lease = response.json()
        assert lease["queue"] == QUEUE
        assert (lease["batch_index"], lease["batch_count"], lease["attempt"]) == (0, 2, 1)
        assert lease["session_id"] == execution.session_id
        assert len(lease["account_ids"]) == 2
        assert lease["run"]["execution_id"] == str(execution.pk)
        assert lease["run"]["review_id"] == review.pk
        assert lease["run"]["review_name"] == review.name
        assert lease["run"]["metadata"] == {"team": "emea"}
        assert lease["lease_seconds"] == settings.SERGAS_SCHEDULING.get("WORK_LEASE_SECONDS", 60)
        batch = RunBatch.objects.get(pk=lease["batch_id"])
        assert (batch.status, str(batch.token), batch.holder) == (
            "running",
            lease["lease_token"],
            "agent:crm-agent",
        )
        event = AuditEvent.objects.get(action="batch_claimed")
        assert event.actor == "agent:crm-agent"
        assert event.metadata["batch_id"] == batch.pk

    def test_an_empty_queue_answers_204(self, worker_api):
        make_review(executor=f"queue:{QUEUE}")
        response = claim(worker_api)
        assert response.status_code == 204
        assert response.content == b""

    def test_an_unknown_queue_is_404(self, worker_api):
        response = claim(worker_api, queue="nobody-uses-this")
        assert response.status_code == 404
        assert response.json()["code"] == "queue_not_found"
        assert response.json()["detail"] == QUEUE_NOT_FOUND.format(queue="nobody-uses-this")

    def test_a_token_limited_to_other_queues_is_refused(self, agent_api, settings):
        start_queue_run(settings=settings)
        api = agent_api("work", queues=("other-queue",))
        response = claim(api)
        assert response.status_code == 403
        assert response.json()["code"] == "queue_not_allowed"
        assert response.json()["allowed_queues"] == ["other-queue"]
        assert claim(agent_api("work", queues=(QUEUE,))).status_code == 200

    def test_the_work_scope_is_required(self, agent_api, settings):
        start_queue_run(settings=settings)
        response = claim(agent_api("write"))
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"queue": "bad queue!"}, "queue"),
            ({"queue": QUEUE, "wait_seconds": 31}, "wait_seconds"),
            ({"queue": QUEUE, "wait_seconds": -1}, "wait_seconds"),
            ({}, "queue"),
        ],
    )
    def test_bad_claims_name_the_field(self, worker_api, body, field):
        response = worker_api.post("/work/claim", body)
        assert response.status_code == 422
        assert response.json()["field"] == field

    def test_critical_runs_are_handed_out_first_then_by_nominal_time(self, worker_api, settings):
        _, low = start_queue_run(settings=settings, accounts=2, name="low", priority="low")
        _, early = start_queue_run(settings=settings, accounts=2, name="early", priority="high")
        _, critical = start_queue_run(
            settings=settings, accounts=2, name="critical", priority="critical"
        )
        _, late = start_queue_run(settings=settings, accounts=2, name="late", priority="high")
        ScheduleExecution.objects.filter(pk=early.pk).update(
            nominal_time=timezone.now() - timedelta(hours=1)
        )
        RunBatch.objects.filter(execution=early).update(
            nominal_time=timezone.now() - timedelta(hours=1)
        )
        order = []
        for _ in range(4):
            lease = claim(worker_api).json()
            order.append(lease["run"]["execution_id"])
        assert order == [str(critical.pk), str(early.pk), str(late.pk), str(low.pk)]

    def test_batches_of_a_paused_or_cancelled_run_are_not_handed_out(self, worker_api, settings):
        _, paused = start_queue_run(settings=settings, accounts=2, name="paused")
        session_services.session_pause(paused.session_id)
        assert claim(worker_api).status_code == 204
        session_services.session_resume(paused.session_id)
        assert claim(worker_api).status_code == 200
        _, cancelled = start_queue_run(settings=settings, accounts=2, name="cancelled")
        session_services.session_cancel(cancelled.session_id)
        assert claim(worker_api).status_code == 204


class TestComplete:
    def test_completing_every_batch_keeps_the_results_and_finishes_the_run(
        self, worker_api, settings
    ):
        _review, execution = start_queue_run(settings=settings, accounts=4)
        first = claim(worker_api).json()
        second = claim(worker_api).json()
        a, b = first["account_ids"]
        response = complete(worker_api, first, [result(a), result(b, "failed", recommendations=[])])
        assert response.status_code == 200, response.content
        assert response["Idempotent-Replayed"] == "false"
        assert response.json() == {
            "batch_id": first["batch_id"],
            "status": "done",
            "results": 2,
            "outcomes": {"reviewed": 1, "failed": 1},
            "recommendations": 1,
            "events_recorded": 0,
            "events_duplicates": 0,
        }
        assert complete(worker_api, second).status_code == 200

        execution.refresh_from_db()
        assert execution.status == "succeeded"
        assert (execution.accounts_processed, execution.accounts_failed) == (3, 1)
        session = AgentSession.objects.get(pk=execution.session_id)
        assert session.status == "completed"
        context = SessionContext.load(session.context)
        assert context.failed_accounts == {b}
        assert context.recommendations_count == 3
        assert context.current_batch == context.total_batches == 2
        metrics = SessionMetrics.load(session.metrics)
        assert metrics.token_usage == 3 * 120
        assert metrics.error_count == 1
        assert len(metrics.account_processing_times_ms) == 4
        kept = AccountReview.objects.get(execution=execution, account_id=a)
        assert kept.outcome == "reviewed"
        assert kept.agent == "crm-agent"
        assert kept.recommendations == [
            {
                "kind": "upsell",
                "title": "Offer the next tier",
                "detail": "",
                "priority": "high",
                "confidence": 0.8,
            }
        ]
        assert str(kept.cost_usd) == "0.000600"
        recorded = AuditEvent.objects.filter(action="batch_recorded")
        assert recorded.count() == 2
        assert recorded.first().actor == "agent:crm-agent"

    def test_a_retried_complete_replays_the_first_answer_and_records_nothing_more(
        self, worker_api, settings
    ):
        _, execution = start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        first = complete(worker_api, lease)
        again = complete(worker_api, lease)
        assert again.status_code == 200
        assert again["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert AccountReview.objects.filter(execution=execution).count() == 2
        assert AuditEvent.objects.filter(action="batch_recorded").count() == 1

    def test_events_are_recorded_with_the_batch_and_name_its_session(self, worker_api, settings):
        _, execution = start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        started = timezone.now()
        invocation = str(uuid.uuid4())
        events = [
            {
                "event_id": invocation,
                "hook": "pre_tool",
                "name": "crm.get_account",
                "timestamp": started.isoformat(),
            },
            {
                "event_id": str(uuid.uuid4()),
                "hook": "post_tool",
                "name": "crm.get_account",
                "timestamp": started.isoformat(),
                "invocation_id": invocation,
                "duration_ms": 12,
            },
        ]
        response = complete(worker_api, lease, events=events)
        assert response.json()["events_recorded"] == 2
        tools = AuditEvent.objects.filter(event_type="tool")
        assert set(tools.values_list("session_id", flat=True)) == {execution.session_id}

    def test_events_of_another_session_are_refused_and_nothing_is_recorded(
        self, worker_api, settings
    ):
        start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        event = {
            "event_id": str(uuid.uuid4()),
            "hook": "pre_tool",
            "name": "crm.get_account",
            "timestamp": timezone.now().isoformat(),
            "session_id": "someone-else",
        }
        response = complete(worker_api, lease, events=[event])
        assert response.status_code == 422
        assert response.json()["code"] == "foreign_session"
        assert response.json()["field"] == "events.0.session_id"
        assert not AccountReview.objects.exists()

    @pytest.mark.parametrize(
        ("mutate", "field", "code"),
        [
            (lambda rs: rs[:1], "results", "invalid_results"),
            (lambda rs: [rs[0], rs[0]], "results.1.account_id", "invalid_results"),
            (
                lambda rs: [rs[0], {**rs[1], "account_id": "stranger"}],
                "results.1.account_id",
                "invalid_results",
            ),
            (
                lambda rs: [{**rs[0], "outcome": "great"}, rs[1]],
                "results.0.outcome",
                "validation_error",
            ),
            (
                lambda rs: [
                    {**rs[0], "recommendations": [{"kind": "Bad Kind", "title": "t"}]},
                    rs[1],
                ],
                "results.0.recommendations.0.kind",
                "validation_error",
            ),
            (
                lambda rs: [{**rs[0], "duration_ms": -1}, rs[1]],
                "results.0.duration_ms",
                "validation_error",
            ),
        ],
    )
    def test_results_that_do_not_fit_the_batch_are_refused_with_the_field(
        self, worker_api, settings, mutate, field, code
    ):
        start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        results = [result(a) for a in lease["account_ids"]]
        response = complete(worker_api, lease, mutate(results))
        assert response.status_code == 422, response.content
        assert (response.json()["code"], response.json()["field"]) == (code, field)
        assert RunBatch.objects.get(pk=lease["batch_id"]).status == "running"

    def test_counters_summed_from_the_results_cannot_be_sent_as_well(self, worker_api, settings):
        start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        response = complete(worker_api, lease, metrics={"token_usage": 5})
        assert response.status_code == 422
        assert response.json()["field"] == "metrics.token_usage"


class TestLeases:
    def test_a_heartbeat_extends_the_lease(self, worker_api, settings):
        start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        RunBatch.objects.filter(pk=lease["batch_id"]).update(
            lease_expires_at=timezone.now() + timedelta(seconds=1)
        )
        response = worker_api.post(
            f"/work/{lease['batch_id']}/heartbeat", {"token": lease["lease_token"]}
        )
        assert response.status_code == 200
        batch = RunBatch.objects.get(pk=lease["batch_id"])
        assert batch.lease_expires_at > timezone.now() + timedelta(seconds=30)
        assert AuditEvent.objects.filter(action="batch_lease_renewed").count() == 1

    def test_a_lease_that_ran_out_is_claimed_again_and_the_old_token_fenced(
        self, worker_api, agent_api, settings
    ):
        _, execution = start_queue_run(settings=settings, accounts=2)
        old = claim(worker_api).json()
        RunBatch.objects.filter(pk=old["batch_id"]).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        other = agent_api("work", name="second-agent")
        new = claim(other).json()
        assert new["batch_id"] == old["batch_id"]
        assert new["lease_token"] != old["lease_token"]
        assert new["attempt"] == 2
        for path, body in (
            ("heartbeat", {"token": old["lease_token"]}),
            (
                "complete",
                {"token": old["lease_token"], "results": [result(a) for a in old["account_ids"]]},
            ),
            ("fail", {"token": old["lease_token"], "error": "late"}),
            ("release", {"token": old["lease_token"]}),
        ):
            response = worker_api.post(f"/work/{old['batch_id']}/{path}", body)
            assert response.status_code == 409, path
            assert (response.json()["code"], response.json()["reason"]) == (
                "lease_lost",
                "taken_over",
            )
        assert complete(other, new).status_code == 200
        assert AccountReview.objects.filter(execution=execution).count() == 2
        assert AuditEvent.objects.filter(action="batch_lease_expired").count() == 1

    def test_a_wrong_token_is_409_and_a_foreign_batch_404(self, worker_api, agent_api, settings):
        start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        wrong = worker_api.post(
            f"/work/{lease['batch_id']}/heartbeat", {"token": str(uuid.uuid4())}
        )
        assert wrong.status_code == 409
        assert wrong.json()["code"] == "lease_lost"
        limited = agent_api("work", queues=("elsewhere",))
        foreign = limited.post(
            f"/work/{lease['batch_id']}/heartbeat", {"token": lease["lease_token"]}
        )
        assert foreign.status_code == 404
        assert foreign.json()["code"] == "batch_not_found"
        missing = worker_api.post("/work/987654321/heartbeat", {"token": lease["lease_token"]})
        assert missing.status_code == 404

    def test_a_batch_of_a_worker_executed_run_does_not_exist_for_agents(self, worker_api, settings):
        review = make_review()
        execution = services.review_trigger_on_demand(review.pk)
        services.execution_claim(str(execution.pk))
        batch = RunBatch.objects.get(execution=execution)
        response = worker_api.post(f"/work/{batch.pk}/heartbeat", {"token": str(uuid.uuid4())})
        assert response.status_code == 404

    def test_a_pause_reaches_the_agent_through_its_heartbeat(self, worker_api, settings):
        _, execution = start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        session_services.session_pause(execution.session_id, actor="staff:ana")
        response = worker_api.post(
            f"/work/{lease['batch_id']}/heartbeat", {"token": lease["lease_token"]}
        )
        assert response.status_code == 409
        assert response.json()["reason"] == "session_paused"
        batch = RunBatch.objects.get(pk=lease["batch_id"])
        assert (batch.status, batch.token) == ("pending", None)
        assert claim(worker_api).status_code == 204  # not while paused
        session_services.session_resume(execution.session_id, actor="staff:ana")
        again = claim(worker_api).json()
        assert again["batch_id"] == lease["batch_id"]
        assert complete(worker_api, again).status_code == 200

    def test_a_cancel_reaches_the_agent_and_its_results_are_refused(self, worker_api, settings):
        _, execution = start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        session_services.session_cancel(execution.session_id, actor="staff:ana")
        heartbeat = worker_api.post(
            f"/work/{lease['batch_id']}/heartbeat", {"token": lease["lease_token"]}
        )
        assert (heartbeat.status_code, heartbeat.json()["reason"]) == (409, "run_cancelled")
        assert complete(worker_api, lease).status_code == 409
        assert not AccountReview.objects.exists()
        execution.refresh_from_db()
        assert (execution.status, execution.error) == (
            "failed",
            "session cancelled outside the run",
        )

    def test_a_released_batch_is_claimable_at_once_and_its_attempt_not_counted(
        self, worker_api, settings
    ):
        start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        response = worker_api.post(
            f"/work/{lease['batch_id']}/release", {"token": lease["lease_token"]}
        )
        assert response.json() == {
            "batch_id": lease["batch_id"],
            "status": "pending",
            "attempt": 0,
            "attempts_left": 3,
        }
        assert claim(worker_api).json()["attempt"] == 1


class TestFail:
    def test_a_retryable_failure_puts_the_batch_back_until_the_attempts_run_out(
        self, worker_api, settings
    ):
        _review, execution = start_queue_run(settings=settings, accounts=2, max_retries=0)
        for attempt in (1, 2, 3):
            lease = claim(worker_api).json()
            assert lease["attempt"] == attempt
            response = worker_api.post(
                f"/work/{lease['batch_id']}/fail",
                {"token": lease["lease_token"], "error": "LLM rate limited"},
            )
            assert response.status_code == 200
        assert response.json()["status"] == "failed"
        execution.refresh_from_db()
        assert execution.status == "failed"
        assert execution.error == "batch 0 failed: LLM rate limited"
        assert AgentSession.objects.get(pk=execution.session_id).status == "failed"
        assert AuditEvent.objects.filter(action="batch_retried").count() == 2

    def test_a_failure_that_is_not_retryable_fails_the_run_which_is_retried_whole(
        self, worker_api, settings
    ):
        review, execution = start_queue_run(settings=settings, accounts=4, max_retries=1)
        lease = claim(worker_api).json()
        other = claim(worker_api).json()
        response = worker_api.post(
            f"/work/{lease['batch_id']}/fail",
            {"token": lease["lease_token"], "error": "account data is corrupt", "retryable": False},
        )
        assert response.json()["status"] == "failed"
        execution.refresh_from_db()
        assert execution.status == "retrying"
        retry = ScheduleExecution.objects.get(review=review, attempt=2)
        assert (retry.executor, retry.trigger) == (f"queue:{QUEUE}", "retry")
        heartbeat = worker_api.post(
            f"/work/{other['batch_id']}/heartbeat", {"token": other["lease_token"]}
        )
        assert heartbeat.json()["reason"] == "run_cancelled"


class TestResultsApi:
    def test_a_runs_results_are_listed_and_filtered_by_outcome(
        self, worker_api, agent_api, settings
    ):
        review, execution = start_queue_run(settings=settings, accounts=2)
        lease = claim(worker_api).json()
        a, b = lease["account_ids"]
        complete(worker_api, lease, [result(a), result(b, "skipped")])
        reader = agent_api("read")
        path = f"/schedules/{review.pk}/executions/{execution.pk}/results"
        page = reader.get(path).json()
        assert [item["account_id"] for item in page["items"]] == sorted([a, b])
        assert page["next_cursor"] is None
        skipped = reader.get(path, {"outcome": "skipped"}).json()["items"]
        assert [(item["account_id"], item["outcome"]) for item in skipped] == [(b, "skipped")]
        assert reader.get(path, {"outcome": "nope"}).status_code == 422
        unknown = reader.get(f"/schedules/{review.pk}/executions/{uuid.uuid4()}/results")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "execution_not_found")
        assert (
            reader.get(f"/schedules/{review.pk}/executions/not-a-uuid/results").status_code == 404
        )

    def test_an_accounts_history_spans_runs_newest_first(self, worker_api, agent_api, settings):
        settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "RUNNER_BATCH_SIZE": 10}
        made = make_review(
            executor=f"queue:{QUEUE}", account_filter={"account_ids": ["acct-9", "acct-7"]}
        )
        for _ in range(2):
            execution = services.review_trigger_on_demand(made.pk)
            services.execution_claim(str(execution.pk))
            lease = claim(worker_api).json()
            complete(worker_api, lease)
        history = agent_api("read").get("/accounts/acct-9/reviews").json()["items"]
        assert len(history) == 2
        assert history[0]["recorded_at"] > history[1]["recorded_at"]
        assert history[0]["review_name"] == made.name
        assert history[0]["recommendations"][0]["kind"] == "upsell"
        assert agent_api("read").get("/accounts/nobody/reviews").json()["items"] == []

    def test_confined_tokens_cannot_read_results(self, client):
        from access.services import agent_token_create
        from tests.agent_api import AgentApi

        issued = agent_token_create(name="confined", scopes=["read"], own_sessions_only=True)
        api = AgentApi(client, issued.secret, issued.token)
        assert api.get("/accounts/a/reviews").status_code == 403
