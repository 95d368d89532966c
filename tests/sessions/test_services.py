import asyncio
import re

import pytest

from audit.models import AuditEvent
from sessions import services
from sessions.exceptions import (
    InvalidSessionId,
    InvalidSessionState,
    SessionAlreadyExists,
    SessionNotFound,
    SessionNotRunning,
    VersionConflict,
)
from sessions.models import (
    AgentSession,
    SessionAccount,
    SessionCheckpoint,
    SessionStatus,
    SessionType,
)
from sessions.selectors import (
    session_checkpoints,
    sessions_list,
    sessions_list_active,
    sessions_with_context,
)
from sessions.state import SessionContext, SessionMetrics
from tests.factories import make_session

pytestmark = pytest.mark.django_db


class TestCreate:
    def test_a_new_session_is_pending_with_a_typed_context_and_its_audit_event(self):
        session = services.session_create(
            orchestrator_id="orch-1",
            session_type=SessionType.SCHEDULED,
            account_ids=["a1", "a2"],
            owner_id="owner_7",
            context={"total_batches": 2, "region": "emea"},
            actor="agent:alpha",
        )
        assert re.fullmatch(r"session_orch-1_[0-9a-f]{16}", session.session_id)
        reloaded = AgentSession.objects.get(pk=session.session_id)
        assert reloaded.status == SessionStatus.PENDING
        assert reloaded.session_type == SessionType.SCHEDULED
        assert reloaded.account_ids == ["a1", "a2"]
        assert reloaded.owner_id == "owner_7"
        context = SessionContext.load(reloaded.context)
        assert context.total_batches == 2
        assert context.metadata == {"region": "emea"}
        assert SessionMetrics.load(reloaded.metrics) == SessionMetrics()
        event = AuditEvent.objects.get(session_id=session.session_id)
        assert (event.action, event.actor, event.metadata["version"]) == (
            "create",
            "agent:alpha",
            1,
        )

    def test_session_type_metrics_and_error_survive_a_round_trip(self):
        session = make_session("running", session_type=SessionType.RECOVERY)
        services.session_update_metrics(session.session_id, counters={"token_usage": 12})
        services.session_fail(session.session_id, error="LLM quota exhausted")
        reloaded = AgentSession.objects.get(pk=session.session_id)
        assert reloaded.session_type == SessionType.RECOVERY
        assert reloaded.metrics["token_usage"] == 12
        assert reloaded.error_message == "LLM quota exhausted"

    def test_a_client_chosen_id_is_kept_and_must_be_unique(self):
        services.session_create(orchestrator_id="o", session_id="0b7c2c9e-uuid-like")
        with pytest.raises(SessionAlreadyExists):
            services.session_create(orchestrator_id="o", session_id="0b7c2c9e-uuid-like")
        assert AuditEvent.objects.filter(session_id="0b7c2c9e-uuid-like").count() == 1

    @pytest.mark.parametrize("bad_id", ["", "has space", "x" * 129, "semi;colon"])
    def test_an_invalid_id_is_refused(self, bad_id):
        with pytest.raises(InvalidSessionId):
            services.session_create(orchestrator_id="o", session_id=bad_id)

    def test_an_unknown_session_type_is_refused_with_the_field(self):
        with pytest.raises(InvalidSessionState) as excinfo:
            services.session_create(orchestrator_id="o", session_type="nightly")
        assert excinfo.value.field == "session_type"

    def test_a_context_that_does_not_fit_is_refused(self):
        with pytest.raises(InvalidSessionState) as excinfo:
            services.session_create(orchestrator_id="o", context={"current_batch": -1})
        assert excinfo.value.field == "current_batch"
        assert AgentSession.objects.count() == 0

    def test_an_unknown_session_is_reported_as_not_found(self):
        with pytest.raises(SessionNotFound, match="session_nope does not exist"):
            services.session_start("session_nope")


class TestContext:
    def test_sets_stay_sets_and_grow_and_unknown_keys_go_to_metadata(self):
        session = make_session("running", account_ids=["a", "b", "c"])
        sid = session.session_id
        services.session_update_context(
            sid, changes={"processed_accounts": ["a"], "failed_accounts": ["b"], "note": "x"}
        )
        services.session_update_context(
            sid, changes={"processed_accounts": ["b", "a"], "current_batch": 2}
        )
        context = SessionContext.load(AgentSession.objects.get(pk=sid).context)
        assert context.processed_accounts == {"a", "b"}
        assert context.failed_accounts == set()  # b succeeded on retry
        assert context.current_batch == 2
        assert context.metadata == {"note": "x"}
        stored = AgentSession.objects.get(pk=sid).context
        assert stored["processed_accounts"] == ["a", "b"]

    def test_metadata_is_merged_key_by_key(self):
        session = make_session("running", context={"metadata": {"a": 1, "b": 2}})
        services.session_update_context(session.session_id, changes={"metadata": {"b": 3}})
        stored = AgentSession.objects.get(pk=session.session_id).context
        assert stored["metadata"] == {"a": 1, "b": 3}

    def test_account_ids_and_owner_columns_follow_the_context(self):
        session = make_session("running")
        services.session_update_context(
            session.session_id, changes={"account_ids": ["z9"], "owner_id": "owner_9"}
        )
        reloaded = AgentSession.objects.get(pk=session.session_id)
        assert (reloaded.account_ids, reloaded.owner_id) == (["z9"], "owner_9")

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"processed_accounts": "a"}, "processed_accounts"),
            ({"processed_accounts": [1]}, "processed_accounts"),
            ({"recommendations_count": -3}, "recommendations_count"),
            ({"metadata": []}, "metadata"),
        ],
    )
    def test_invalid_changes_are_refused_and_change_nothing(self, changes, field):
        session = make_session("running")
        with pytest.raises(InvalidSessionState) as excinfo:
            services.session_update_context(session.session_id, changes=changes)
        assert excinfo.value.field == field
        assert AgentSession.objects.get(pk=session.session_id).version == session.version

    def test_a_finished_session_keeps_its_context(self):
        session = make_session("completed")
        with pytest.raises(SessionNotRunning):
            services.session_update_context(session.session_id, changes={"current_batch": 1})

    def test_an_expected_version_that_moved_on_is_a_conflict(self):
        session = make_session("running")
        services.session_update_context(session.session_id, changes={"current_batch": 1})
        with pytest.raises(VersionConflict, match=f"at version {session.version + 1}"):
            services.session_update_context(
                session.session_id,
                changes={"current_batch": 2},
                expected_version=session.version,
            )


class TestMetrics:
    def test_counters_add_up_and_times_append(self):
        session = make_session("running")
        sid = session.session_id
        services.session_update_metrics(
            sid, counters={"api_call_count": 2}, processing_times_ms=[100]
        )
        services.session_update_metrics(
            sid, counters={"api_call_count": 3, "cache_hits": 1}, processing_times_ms=[200, 300]
        )
        metrics = SessionMetrics.load(AgentSession.objects.get(pk=sid).metrics)
        assert metrics.api_call_count == 5
        assert metrics.cache_hits == 1
        assert metrics.account_processing_times_ms == [100, 200, 300]

    @pytest.mark.parametrize(
        "counters",
        [{"bogus": 1}, {"api_call_count": -1}, {"api_call_count": 1.5}, {"error_count": True}],
    )
    def test_bad_increments_are_refused(self, counters):
        session = make_session("running")
        with pytest.raises(InvalidSessionState):
            services.session_update_metrics(session.session_id, counters=counters)


class TestCheckpointsAndRecovery:
    def test_a_checkpoint_is_a_row_with_the_state_and_its_size(self):
        session = make_session("running")
        checkpoint = services.session_checkpoint(
            session.session_id,
            context_changes={"current_batch": 1, "processed_accounts": ["acct_1"]},
        )
        assert checkpoint.sequence == 1
        assert checkpoint.status == SessionStatus.RUNNING
        assert checkpoint.context["processed_accounts"] == ["acct_1"]
        assert checkpoint.context["checkpoint_timestamp"] is not None
        assert checkpoint.size_bytes > 100
        event = AuditEvent.objects.filter(action="checkpoint").get()
        assert event.metadata["sequence"] == 1

    def test_only_the_newest_checkpoints_are_kept(self, settings):
        settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "CHECKPOINTS_KEPT": 3}
        session = make_session("running")
        for batch in range(1, 8):
            services.session_checkpoint(
                session.session_id, context_changes={"current_batch": batch}
            )
        kept = list(session_checkpoints(session.session_id).values_list("sequence", flat=True))
        assert kept == [7, 6, 5]

    def test_checkpointing_a_session_that_is_not_running_or_paused_is_refused(self):
        session = make_session("pending")
        with pytest.raises(SessionNotRunning):
            services.session_checkpoint(session.session_id)

    def test_recovery_restores_the_newest_checkpoint_and_records_it(self):
        session = make_session("running")
        sid = session.session_id
        services.session_update_metrics(sid, counters={"api_call_count": 4})
        services.session_checkpoint(
            sid, context_changes={"current_batch": 1, "processed_accounts": ["acct_1"]}
        )
        services.session_checkpoint(
            sid, context_changes={"current_batch": 2, "processed_accounts": ["acct_2"]}
        )
        # Work after the last checkpoint is lost in the crash.
        services.session_update_context(
            sid, changes={"current_batch": 3, "processed_accounts": ["acct_3"]}
        )
        services.session_update_metrics(sid, counters={"api_call_count": 10})
        services.session_interrupt(sid, reason="worker lost")

        recovered = services.session_recover(sid, actor="agent:beta")

        assert recovered.status == SessionStatus.RUNNING
        assert recovered.recovery_count == 1
        assert recovered.recovered_from_sequence == 2
        reloaded = AgentSession.objects.get(pk=sid)
        context = SessionContext.load(reloaded.context)
        assert context.current_batch == 2
        assert context.processed_accounts == {"acct_1", "acct_2"}
        assert reloaded.metrics["api_call_count"] == 4
        assert recovered.context == reloaded.context  # deferred state loads the restored row
        event = AuditEvent.objects.filter(session_id=sid, action="recover").get()
        assert event.actor == "agent:beta"
        assert event.metadata["checkpoint_sequence"] == 2
        assert event.metadata["previous_status"] == "interrupted"

    def test_recovery_without_a_checkpoint_keeps_the_current_state(self):
        session = make_session("interrupted")
        recovered = services.session_recover(session.session_id)
        assert recovered.status == SessionStatus.RUNNING
        assert recovered.recovered_from_sequence is None
        event = AuditEvent.objects.filter(session_id=session.session_id, action="recover").get()
        assert event.metadata["checkpoint_sequence"] is None

    def test_each_recovery_is_counted(self):
        session = make_session("running")
        services.session_checkpoint(session.session_id)
        for _ in range(3):
            services.session_interrupt(session.session_id)
            services.session_recover(session.session_id)
        assert AgentSession.objects.get(pk=session.session_id).recovery_count == 3

    def test_checkpoints_never_touch_the_filesystem(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        session = make_session("running")
        services.session_checkpoint(session.session_id)
        assert list(tmp_path.iterdir()) == []
        assert SessionCheckpoint.objects.filter(session_id=session.session_id).count() == 1


class TestHeartbeat:
    def test_a_running_session_records_its_heartbeat(self):
        session = make_session("running")
        beat = services.session_heartbeat(session.session_id)
        assert beat.recorded
        reloaded = AgentSession.objects.get(pk=session.session_id)
        assert reloaded.last_heartbeat_at == beat.at
        assert reloaded.version == session.version  # liveness, not state

    def test_a_paused_session_tells_its_agent_instead_of_recording(self):
        session = make_session("paused")
        beat = services.session_heartbeat(session.session_id)
        assert (beat.recorded, beat.status) == (False, "paused")

    def test_an_unknown_session_is_not_found(self):
        with pytest.raises(SessionNotFound):
            services.session_heartbeat("session_missing")


class TestScope:
    def test_a_normal_exit_completes_the_session(self):
        session = make_session("pending")
        with services.session_scope(session.session_id) as running:
            assert running.status == SessionStatus.RUNNING
        assert AgentSession.objects.get(pk=session.session_id).status == SessionStatus.COMPLETED

    @pytest.mark.parametrize(
        "error", [ValueError("bad data"), asyncio.CancelledError(), KeyboardInterrupt()]
    )
    def test_an_exception_fails_the_session_with_the_error_and_is_re_raised(self, error):
        session = make_session("pending")
        with pytest.raises(type(error)), services.session_scope(session.session_id):
            raise error
        reloaded = AgentSession.objects.get(pk=session.session_id)
        assert reloaded.status == SessionStatus.FAILED
        assert type(error).__name__ in reloaded.error_message

    def test_a_session_paused_inside_the_scope_is_left_paused(self):
        session = make_session("pending")
        with services.session_scope(session.session_id):
            services.session_pause(session.session_id, actor="staff:ana")
        assert AgentSession.objects.get(pk=session.session_id).status == SessionStatus.PAUSED

    def test_a_session_cancelled_inside_the_scope_stays_cancelled_when_the_block_raises(self):
        session = make_session("pending")

        def agent_stopping_on_cancel() -> None:
            with services.session_scope(session.session_id):
                services.session_cancel(session.session_id, actor="staff:ana")
                raise RuntimeError("stopped by cancel")

        with pytest.raises(RuntimeError):
            agent_stopping_on_cancel()
        assert AgentSession.objects.get(pk=session.session_id).status == SessionStatus.CANCELLED


def test_list_active_holds_running_and_paused_sessions_only():
    statuses = ["pending", "running", "paused", "completed", "interrupted", "cancelled"]
    made = {status: make_session(status, orchestrator_id="orch-a") for status in statuses}
    make_session("running", orchestrator_id="orch-b")
    active = set(
        sessions_list_active(orchestrator_id="orch-a").values_list("session_id", flat=True)
    )
    assert active == {made["running"].session_id, made["paused"].session_id}
    assert sessions_list_active().count() == 3


class TestAccountIndex:
    def _indexed(self, session_id: str) -> set[str]:
        return set(
            SessionAccount.objects.filter(session_id=session_id).values_list(
                "account_id", flat=True
            )
        )

    def test_accounts_are_indexed_at_creation_and_follow_changes(self):
        session = make_session("running", account_ids=["a", "b"])
        assert self._indexed(session.session_id) == {"a", "b"}
        services.session_update_context(session.session_id, changes={"account_ids": ["b", "c"]})
        assert self._indexed(session.session_id) == {"b", "c"}

    def test_recovery_restores_the_accounts_of_the_checkpoint(self):
        session = make_session("running", account_ids=["a", "b"])
        services.session_checkpoint(session.session_id)
        services.session_update_context(session.session_id, changes={"account_ids": ["z"]})
        services.session_interrupt(session.session_id)
        services.session_recover(session.session_id)
        assert AgentSession.objects.get(pk=session.session_id).account_ids == ["a", "b"]
        assert self._indexed(session.session_id) == {"a", "b"}

    def test_sessions_of_an_account_are_found_through_the_index(self):
        wanted = make_session("running", account_ids=["acct_9", "acct_1"])
        make_session("running", account_ids=["acct_2"])
        page = sessions_list(account_id="acct_9")
        assert [s.session_id for s in page.items] == [wanted.session_id]


def test_context_containment_search_ignores_the_account_sets():
    tagged = make_session("running", context={"metadata": {"region": "emea"}})
    make_session("running", context={"metadata": {"region": "apac"}})
    found = sessions_with_context({"metadata": {"region": "emea"}})
    assert list(found.values_list("session_id", flat=True)) == [tagged.session_id]
    assert not sessions_with_context({"account_ids": ["acct_1"]}).exists()
