"""/api/v1/sessions: every endpoint through HTTP, against PostgreSQL and Redis."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from access.exceptions import IDEMPOTENCY_KEY_REUSED
from audit.models import AuditEvent
from kernel.pagination import INVALID_CURSOR
from sessions import services
from sessions.exceptions import INVALID_TRANSITION
from sessions.models import AgentSession
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def _create(api, **fields):
    body = {"orchestrator_id": "orch-api", "account_ids": ["a1", "a2"], **fields}
    response = api.post("/sessions", body)
    assert response.status_code == 201, response.content
    return response.json()


class TestCreate:
    def test_creating_a_session_returns_it_and_audits_the_agent(self, agent_api):
        api = agent_api(name="reviewer-1")
        body = _create(
            api, session_type="scheduled", owner_id="owner_3", context={"total_batches": 2}
        )
        assert body["status"] == "pending"
        assert body["session_type"] == "scheduled"
        assert body["account_ids"] == ["a1", "a2"]
        assert body["context"]["total_batches"] == 2
        assert body["metrics"]["api_call_count"] == 0
        assert body["allowed_actions"] == ["start", "fail", "cancel"]
        event = AuditEvent.objects.get(session_id=body["session_id"])
        assert (event.action, event.actor) == ("create", "agent:reviewer-1")

    def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(self, agent_api):
        api = agent_api()
        body = {"orchestrator_id": "o", "account_ids": ["a"]}
        first = api.post("/sessions", body, idempotency_key="k-1")
        again = api.post("/sessions", body, idempotency_key="k-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert first.json() == again.json()
        assert (first["Idempotent-Replayed"], again["Idempotent-Replayed"]) == ("false", "true")
        assert AgentSession.objects.count() == 1
        assert AuditEvent.objects.filter(action="create").count() == 1

    def test_reusing_an_idempotency_key_for_another_request_is_refused(self, agent_api):
        api = agent_api()
        api.post("/sessions", {"orchestrator_id": "o"}, idempotency_key="k-1")
        response = api.post("/sessions", {"orchestrator_id": "other"}, idempotency_key="k-1")
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert response.json()["detail"] == IDEMPOTENCY_KEY_REUSED.format(key="k-1")
        assert AgentSession.objects.count() == 1

    def test_idempotency_keys_belong_to_their_token(self, agent_api):
        body = {"orchestrator_id": "o"}
        agent_api(name="a").post("/sessions", body, idempotency_key="same")
        agent_api(name="b").post("/sessions", body, idempotency_key="same")
        assert AgentSession.objects.count() == 2

    def test_a_create_that_failed_can_be_retried_with_the_same_key(self, agent_api):
        api = agent_api()
        make_session(session_id="taken")
        refused = api.post(
            "/sessions", {"orchestrator_id": "o", "session_id": "taken"}, idempotency_key="k"
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "session_exists"
        AgentSession.objects.filter(pk="taken").update(session_id="moved")
        assert (
            api.post(
                "/sessions", {"orchestrator_id": "o", "session_id": "taken"}, idempotency_key="k"
            ).status_code
            == 201
        )

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "orchestrator_id"),
            ({"orchestrator_id": "o", "session_type": "nightly"}, "session_type"),
            ({"orchestrator_id": "o", "session_id": "has space"}, "session_id"),
            ({"orchestrator_id": "o", "context": {"current_batch": -1}}, "current_batch"),
            ({"orchestrator_id": "o", "account_ids": "a1"}, "account_ids"),
            ({"orchestrator_id": "   "}, "orchestrator_id"),
            # Kept in columns of 128 characters: refused, not a database error (a 500).
            ({"orchestrator_id": "o", "context": {"owner_id": "x" * 129}}, "owner_id"),
            ({"orchestrator_id": "o", "account_ids": ["x" * 129]}, "account_ids.0"),
            ({"orchestrator_id": "o", "context": {"account_ids": ["x" * 129]}}, "account_ids.0"),
            # Invalid in the context though the top-level field replaces it (schemathesis).
            (
                {"orchestrator_id": "o", "owner_id": "", "context": {"owner_id": {"": True}}},
                "owner_id",
            ),
            (
                {"orchestrator_id": "o", "account_ids": [], "context": {"account_ids": "a"}},
                "account_ids",
            ),
        ],
    )
    def test_invalid_input_is_422_naming_the_field(self, agent_api, body, field):
        response = agent_api().post("/sessions", body)
        assert response.status_code == 422
        assert response.json()["field"] == field
        assert AgentSession.objects.count() == 0

    def test_an_invalid_idempotency_key_is_422(self, agent_api):
        response = agent_api().post("/sessions", {"orchestrator_id": "o"}, idempotency_key="é")
        assert response.status_code == 422
        assert response.json()["field"] == "Idempotency-Key"


class TestRead:
    def test_the_detail_carries_context_metrics_and_the_version_as_etag(self, agent_api):
        api = agent_api("read")
        session = make_session("running", context={"metadata": {"region": "emea"}})
        response = api.get(f"/sessions/{session.session_id}")
        assert response.status_code == 200
        assert response["ETag"] == f'"{session.version}"'
        body = response.json()
        assert body["context"]["metadata"] == {"region": "emea"}
        assert body["version"] == session.version

    def test_an_unknown_session_is_404_with_its_code(self, agent_api):
        response = agent_api("read").get("/sessions/nope")
        assert response.status_code == 404
        assert response.json() == {
            "code": "session_not_found",
            "detail": "Session nope does not exist.",
            "session_id": "nope",
        }

    def test_the_list_filters_by_every_field(self, agent_api):
        api = agent_api("read")
        running = make_session("running", orchestrator_id="north", owner_id="o1")
        make_session(
            "paused", orchestrator_id="south", account_ids=["z9"], session_type="scheduled"
        )
        make_session("completed", orchestrator_id="north", owner_id="o2")

        def ids(**params):
            response = api.get("/sessions", params)
            assert response.status_code == 200, response.content
            return {item["session_id"] for item in response.json()["items"]}

        everything = ids()
        assert len(everything) == 3
        assert ids(status="running") == {running.session_id}
        assert len(ids(status=["running", "paused"])) == 2
        assert len(ids(orchestrator_id="north")) == 2
        assert ids(owner_id="o1") == {running.session_id}
        assert len(ids(account_id="z9")) == 1
        assert len(ids(session_type="scheduled")) == 1
        assert ids(created_after=(timezone.now() + timedelta(minutes=1)).isoformat()) == set()
        assert ids(created_before=(timezone.now() + timedelta(minutes=1)).isoformat()) == everything

    def test_the_list_filters_by_what_the_context_contains(self, agent_api):
        api = agent_api("read")
        emea = make_session("running", context={"metadata": {"region": "emea", "tier": 1}})
        make_session("running", context={"metadata": {"region": "apac"}})
        make_session("paused", context={"metadata": {"region": "emea"}})

        def ids(contains: dict, **params) -> set[str]:
            response = api.get("/sessions", {"context": json.dumps(contains), **params})
            assert response.status_code == 200, response.content
            return {item["session_id"] for item in response.json()["items"]}

        assert len(ids({"metadata": {"region": "emea"}})) == 2
        assert ids({"metadata": {"region": "emea"}}, status="running") == {emea.session_id}
        assert ids({"metadata": {"tier": 1}}) == {emea.session_id}
        assert ids({"metadata": {"region": "nowhere"}}) == set()
        assert len(ids({})) == 3

    @pytest.mark.parametrize("text", ["{oops", "[1]", '"emea"', "3"])
    def test_a_context_filter_that_is_not_a_json_object_is_422(self, agent_api, text):
        response = agent_api("read").get("/sessions", {"context": text})
        assert response.status_code == 422
        assert response.json()["field"] == "context"
        assert "must be a JSON object" in response.json()["detail"]

    def test_cursor_pagination_visits_every_session_once_even_as_new_ones_arrive(self, agent_api):
        api = agent_api("read")
        created = {make_session().session_id for _ in range(7)}
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = api.get("/sessions", params).json()
            seen += [item["session_id"] for item in page["items"]]
            pages += 1
            if pages == 1:
                make_session()  # newer than the cursor: must not appear or shift the pages
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert sorted(seen) == sorted(created)

    @pytest.mark.parametrize("params", [{"cursor": "garbage"}, {"limit": 0}, {"limit": 501}])
    def test_a_bad_cursor_or_limit_is_422(self, agent_api, params):
        response = agent_api("read").get("/sessions", params)
        assert response.status_code == 422
        assert response.json()["field"] in {"cursor", "limit"}

    def test_a_cursor_from_another_list_is_refused(self, agent_api):
        api = agent_api("admin")
        make_session()
        make_session()
        audit_cursor = api.get("/audit/events", {"limit": 1}).json()["next_cursor"]
        response = api.get("/sessions", {"cursor": audit_cursor})
        assert response.status_code == 422
        assert response.json()["detail"] == INVALID_CURSOR


class TestLifecycle:
    def test_an_agent_drives_a_session_to_completion_and_gets_its_summary(self, agent_api):
        api = agent_api(name="runner")
        sid = _create(api)["session_id"]
        assert api.post(f"/sessions/{sid}/start").json()["status"] == "running"
        assert api.post(f"/sessions/{sid}/pause", {"reason": "lunch"}).json()["status"] == "paused"
        assert api.post(f"/sessions/{sid}/resume").json()["status"] == "running"
        done = api.post(f"/sessions/{sid}/complete").json()
        assert done["status"] == "completed"
        assert done["allowed_actions"] == []
        assert done["summary"]["status"] == "completed"
        assert done["summary"]["events"]["session_lifecycle"] == 4
        pause = AuditEvent.objects.get(session_id=sid, action="pause")
        assert (pause.actor, pause.metadata["reason"]) == ("agent:runner", "lunch")

    def test_fail_needs_an_error_and_records_it(self, agent_api):
        api = agent_api()
        sid = make_session("running").session_id
        missing = api.post(f"/sessions/{sid}/fail", {})
        assert missing.status_code == 422
        assert missing.json()["field"] == "error"
        failed = api.post(f"/sessions/{sid}/fail", {"error": "CRM down"}).json()
        assert (failed["status"], failed["error_message"]) == ("failed", "CRM down")

    def test_cancel_takes_a_reason(self, agent_api):
        sid = make_session("paused").session_id
        assert agent_api().post(f"/sessions/{sid}/cancel", {"reason": "dup"}).status_code == 200
        assert AuditEvent.objects.get(session_id=sid, action="cancel").metadata["reason"] == "dup"

    @pytest.mark.parametrize(
        ("status", "action"),
        [
            ("completed", "start"),
            ("completed", "recover"),
            ("pending", "pause"),
            ("failed", "resume"),
        ],
    )
    def test_an_invalid_transition_is_409_naming_the_current_status(
        self, agent_api, status, action
    ):
        session = make_session(status)
        response = agent_api().post(f"/sessions/{session.session_id}/{action}")
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "invalid_transition"
        assert body["status"] == status
        assert body["action"] == action
        assert f"it is {status}" in body["detail"]
        assert body["detail"].startswith(INVALID_TRANSITION.split("{")[0] + action)

    def test_if_match_makes_a_stale_write_a_409(self, agent_api):
        api = agent_api()
        session = make_session("running")
        stale = api.post(
            f"/sessions/{session.session_id}/pause", if_match=f'"{session.version - 1}"'
        )
        assert stale.status_code == 409
        assert stale.json()["code"] == "version_conflict"
        fresh = api.post(f"/sessions/{session.session_id}/pause", if_match=f'"{session.version}"')
        assert fresh.status_code == 200

    def test_expected_version_in_the_body_works_like_if_match(self, agent_api):
        session = make_session("running")
        response = agent_api().post(
            f"/sessions/{session.session_id}/complete", {"expected_version": 99}
        )
        assert response.status_code == 409
        assert response.json()["current"] == session.version

    @pytest.mark.parametrize(
        ("if_match", "body"), [("seven", None), ('"3"', {"expected_version": 4})]
    )
    def test_an_unreadable_or_contradicting_if_match_is_422(self, agent_api, if_match, body):
        session = make_session("running")
        response = agent_api().post(
            f"/sessions/{session.session_id}/pause", body, if_match=if_match
        )
        assert response.status_code == 422
        assert response.json()["field"] == "If-Match"


class TestRecovery:
    def test_recover_answers_with_a_summary_and_leaves_a_large_context_behind(self, agent_api):
        api = agent_api()
        session = make_session("running")
        sid = session.session_id
        blob = "x" * (1024 * 1024)
        services.session_checkpoint(sid, context_changes={"metadata": {"blob": blob}})
        services.session_interrupt(sid)
        response = api.post(f"/sessions/{sid}/recover")
        assert response.status_code == 200
        assert len(response.content) < 4096
        body = response.json()
        assert (body["status"], body["recovered_from_sequence"], body["recovery_count"]) == (
            "running",
            1,
            1,
        )
        assert body["context"] is None
        assert AgentSession.objects.get(pk=sid).context["metadata"]["blob"] == blob

    def test_recover_returns_the_restored_state_when_asked(self, agent_api):
        session = make_session("running")
        sid = session.session_id
        services.session_checkpoint(sid, context_changes={"current_batch": 3})
        services.session_update_context(sid, changes={"current_batch": 5})
        services.session_pause(sid)
        body = agent_api().post(f"/sessions/{sid}/recover?include_state=true").json()
        assert body["context"]["current_batch"] == 3
        assert body["metrics"] is not None


class TestState:
    def test_a_context_patch_merges_and_returns_the_new_version(self, agent_api):
        api = agent_api()
        session = make_session("running")
        sid = session.session_id
        response = api.patch(
            f"/sessions/{sid}/context", {"changes": {"processed_accounts": ["acct_1"], "note": "n"}}
        )
        assert response.status_code == 200
        assert response.json()["version"] == session.version + 1
        context = AgentSession.objects.get(pk=sid).context
        assert context["processed_accounts"] == ["acct_1"]
        assert context["metadata"] == {"note": "n"}

    def test_a_context_patch_that_does_not_fit_is_422_with_the_field(self, agent_api):
        sid = make_session("running").session_id
        response = agent_api().patch(f"/sessions/{sid}/context", {"changes": {"total_batches": -2}})
        assert response.status_code == 422
        assert response.json()["field"] == "total_batches"

    def test_metrics_increments_add_up(self, agent_api):
        api = agent_api()
        sid = make_session("running").session_id
        for _ in range(2):
            api.post(
                f"/sessions/{sid}/metrics",
                {"counters": {"api_call_count": 3}, "processing_times_ms": [10]},
            )
        metrics = AgentSession.objects.get(pk=sid).metrics
        assert metrics["api_call_count"] == 6
        assert metrics["account_processing_times_ms"] == [10, 10]

    def test_an_unknown_metrics_counter_is_422(self, agent_api):
        sid = make_session("running").session_id
        response = agent_api().post(f"/sessions/{sid}/metrics", {"counters": {"bogus": 1}})
        assert response.status_code == 422
        assert response.json()["field"] == "counters.bogus"

    def test_a_retried_metrics_post_with_its_key_counts_once(self, agent_api):
        api = agent_api()
        sid = make_session("running").session_id
        body = {"counters": {"api_call_count": 3}, "processing_times_ms": [10]}
        first = api.post(f"/sessions/{sid}/metrics", body, idempotency_key="m-1")
        again = api.post(f"/sessions/{sid}/metrics", body, idempotency_key="m-1")
        assert (first.status_code, again.status_code) == (200, 200)
        assert first.json() == again.json()
        assert (first["Idempotent-Replayed"], again["Idempotent-Replayed"]) == ("false", "true")
        metrics = AgentSession.objects.get(pk=sid).metrics
        assert metrics["api_call_count"] == 3
        assert metrics["account_processing_times_ms"] == [10]
        assert AuditEvent.objects.filter(session_id=sid, action="update_metrics").count() == 1

    def test_a_metrics_key_reused_with_other_counts_is_refused(self, agent_api):
        api = agent_api()
        sid = make_session("running").session_id
        api.post(f"/sessions/{sid}/metrics", {"counters": {"cache_hits": 1}}, idempotency_key="m")
        refused = api.post(
            f"/sessions/{sid}/metrics", {"counters": {"cache_hits": 2}}, idempotency_key="m"
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "idempotency_key_reused"
        assert AgentSession.objects.get(pk=sid).metrics["cache_hits"] == 1

    def test_context_increments_add_to_the_counters(self, agent_api):
        api = agent_api()
        session = make_session("running", context={"total_batches": 4, "current_batch": 1})
        response = api.patch(
            f"/sessions/{session.session_id}/context",
            {
                "changes": {"note": "n"},
                "increments": {"current_batch": 1, "recommendations_count": 3},
            },
        )
        assert response.status_code == 200, response.content
        context = AgentSession.objects.get(pk=session.session_id).context
        assert (context["current_batch"], context["total_batches"]) == (2, 4)
        assert context["recommendations_count"] == 3
        assert context["metadata"] == {"note": "n"}

    def test_a_retried_context_patch_with_its_key_increments_once(self, agent_api):
        api = agent_api()
        sid = make_session("running").session_id
        body = {"increments": {"current_batch": 1}}
        for _ in range(2):
            assert (
                api.patch(f"/sessions/{sid}/context", body, idempotency_key="c").status_code == 200
            )
        assert AgentSession.objects.get(pk=sid).context["current_batch"] == 1

    @pytest.mark.parametrize(
        ("increments", "field"),
        [
            ({"processed_accounts": 1}, "increments.processed_accounts"),
            ({"current_batch": -1}, "increments.current_batch"),
        ],
    )
    def test_an_increment_the_schema_does_not_name_is_422(self, agent_api, increments, field):
        sid = make_session("running").session_id
        response = agent_api().patch(f"/sessions/{sid}/context", {"increments": increments})
        assert response.status_code == 422
        assert response.json()["field"] == field

    def test_a_retried_lifecycle_action_with_its_key_replays_its_answer(self, agent_api):
        api = agent_api()
        sid = make_session("running").session_id
        first = api.post(f"/sessions/{sid}/complete", {}, idempotency_key="done")
        again = api.post(f"/sessions/{sid}/complete", {}, idempotency_key="done")
        assert (first.status_code, again.status_code) == (200, 200)
        assert first.json() == again.json()
        assert again.json()["status"] == "completed"
        assert api.post(f"/sessions/{sid}/complete", {}).status_code == 409

    def test_a_key_covers_if_match_too(self, agent_api):
        api = agent_api()
        session = make_session("running")
        sid, version = session.session_id, session.version
        api.post(f"/sessions/{sid}/pause", {}, idempotency_key="p", if_match=f'"{version}"')
        refused = api.post(
            f"/sessions/{sid}/pause", {}, idempotency_key="p", if_match=f'"{version + 1}"'
        )
        assert refused.json()["code"] == "idempotency_key_reused"

    def test_a_recover_with_its_key_replays_without_the_state_unless_asked(self, agent_api):
        api = agent_api()
        session = make_session("running")
        sid = session.session_id
        services.session_checkpoint(sid)
        services.session_pause(sid)
        first = api.post(f"/sessions/{sid}/recover", {}, idempotency_key="r")
        again = api.post(f"/sessions/{sid}/recover", {}, idempotency_key="r")
        assert (first.status_code, again.status_code) == (200, 200)
        assert first.json() == again.json()
        assert first.json()["context"] is None
        assert AgentSession.objects.get(pk=sid).recovery_count == 1

    def test_a_heartbeat_tells_a_paused_agent_to_stop(self, agent_api):
        api = agent_api()
        running, paused = make_session("running"), make_session("paused")
        assert api.post(f"/sessions/{running.session_id}/heartbeat").json()["recorded"] is True
        body = api.post(f"/sessions/{paused.session_id}/heartbeat").json()
        assert (body["status"], body["recorded"]) == ("paused", False)
        assert api.post("/sessions/nope/heartbeat").status_code == 404

    def test_checkpoints_are_created_and_listed_newest_first_without_state(self, agent_api):
        api = agent_api()
        sid = make_session("running").session_id
        first = api.post(f"/sessions/{sid}/checkpoints", {"context_changes": {"current_batch": 1}})
        assert first.status_code == 201
        assert first.json()["sequence"] == 1
        api.post(f"/sessions/{sid}/checkpoints")
        keyed = api.post(f"/sessions/{sid}/checkpoints", idempotency_key="cp")
        assert api.post(f"/sessions/{sid}/checkpoints", idempotency_key="cp").json() == keyed.json()
        listed = api.get(f"/sessions/{sid}/checkpoints").json()
        assert [item["sequence"] for item in listed] == [3, 2, 1]
        assert set(listed[0]) == {"sequence", "status", "size_bytes", "created_at"}
        assert api.get("/sessions/nope/checkpoints").status_code == 404

    def test_checkpointing_a_finished_session_is_409(self, agent_api):
        sid = make_session("completed").session_id
        response = agent_api().post(f"/sessions/{sid}/checkpoints")
        assert response.status_code == 409
        assert response.json()["code"] == "session_not_running"


class TestAuditTrail:
    def test_the_trail_downloads_as_json_lines_holding_every_version(self, agent_api):
        session = make_session("completed")
        response = agent_api("read").get(f"/sessions/{session.session_id}/audit-trail")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-ndjson"
        assert "attachment" in response["Content-Disposition"]
        lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
        assert [line["metadata"]["version"] for line in lines] == list(
            range(1, session.version + 1)
        )
        assert {"event_id", "timestamp", "actor", "action", "resource"} <= set(lines[0])
        stored = AuditEvent.objects.filter(session_id=session.session_id).order_by("timestamp")[0]
        assert lines[0]["timestamp"].startswith(stored.timestamp.isoformat()[:26])

    def test_the_trail_of_an_unknown_session_is_404(self, agent_api):
        assert agent_api("read").get("/sessions/nope/audit-trail").status_code == 404

    def test_staff_download_the_trail_from_the_admin_page_of_the_session(self, admin_client):
        session = make_session("completed")
        page = admin_client.get(
            f"/admin/agent_sessions/agentsession/{session.session_id}/change/"
        ).content.decode()
        link = f"/api/v1/sessions/{session.session_id}/audit-trail"
        assert link in page
        response = admin_client.get(link)
        assert response.status_code == 200
        assert len(b"".join(response.streaming_content).splitlines()) == session.version

    def test_a_missing_body_is_named_as_the_body(self, agent_api):
        session = make_session("running")
        response = agent_api().post(f"/sessions/{session.session_id}/fail")
        assert response.status_code == 422
        assert response.json()["field"] == "body"
