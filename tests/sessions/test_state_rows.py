"""Session state kept as what changed (progress, times and account list rows beside small
row JSON) reads exactly like the whole context and metrics the rows used to hold, and
recovery restores exactly the checkpointed state, whatever happened after it."""

import json
import random

import pytest
from django.db import connection

from sessions import services
from sessions.models import AgentSession, SessionProgress, SessionTimes
from sessions.schemas import SessionDetailOut
from sessions.selectors import session_checkpoints, session_get, session_state_read
from sessions.state import SessionContext, SessionMetrics
from tests.factories import make_session

pytestmark = pytest.mark.django_db

ACCOUNTS = [f"acct_{index:03d}" for index in range(40)]


class Reference:
    """The session as the previous release kept it: the whole context and metrics,
    merged by the same rules, snapshot whole at each checkpoint."""

    def __init__(self, session: AgentSession) -> None:
        self.context = SessionContext.load(session.context)
        self.metrics = SessionMetrics.load(session.metrics)
        self.checkpoints: dict[int, tuple[SessionContext, SessionMetrics]] = {}

    def state(self) -> tuple[dict, dict]:
        return _as_jsonb(self.context.dump()), _as_jsonb(self.metrics.dump())


def _as_jsonb(value: dict) -> dict:
    """``value`` stored in and read back from a JSONB value (its key order included)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [json.dumps(value)])
        return json.loads(cursor.fetchone()[0])


def _text(value: dict) -> str:
    """JSON text, keys in order."""
    return json.dumps(value, sort_keys=False)


def _assert_same(session_id: str, reference: Reference) -> None:
    context, metrics = session_state_read(session_id)
    expected_context, expected_metrics = reference.state()
    assert _text(context) == _text(expected_context)  # same keys in the same order
    assert _text(metrics) == _text(expected_metrics)


def _update_context(reference: Reference, sid: str, changes: dict, increments: dict) -> None:
    services.session_update_context(sid, changes=changes, increments=increments)
    reference.context = reference.context.merge(changes, increments)


def _update_metrics(reference: Reference, sid: str, counters: dict, times: list[int]) -> None:
    services.session_update_metrics(sid, counters=counters, processing_times_ms=times)
    reference.metrics = reference.metrics.increment(counters, times)


def _checkpoint(reference: Reference, sid: str, changes: dict, increments: dict) -> int:
    checkpoint = services.session_checkpoint(
        sid, context_changes=changes, context_increments=increments
    )
    reference.context = reference.context.merge(changes, increments)
    reference.context.checkpoint_timestamp = checkpoint.stored_context["checkpoint_timestamp"]
    reference.checkpoints[checkpoint.sequence] = (
        reference.context.model_copy(deep=True),
        reference.metrics.model_copy(deep=True),
    )
    return checkpoint.sequence


def _recover(reference: Reference, sid: str) -> None:
    services.session_interrupt(sid, reason="crash")
    recovered = services.session_recover(sid)
    if recovered.recovered_from_sequence is not None:
        context, metrics = reference.checkpoints[recovered.recovered_from_sequence]
        reference.context = context.model_copy(deep=True)
        reference.metrics = metrics.model_copy(deep=True)


def _changes(rng: random.Random) -> tuple[dict, dict]:
    changes: dict = {}
    if rng.random() < 0.8:
        changes["processed_accounts"] = rng.sample(ACCOUNTS, rng.randint(0, 4))
    if rng.random() < 0.6:
        changes["failed_accounts"] = rng.sample(ACCOUNTS, rng.randint(0, 4))
    if rng.random() < 0.3:
        changes["metadata"] = {rng.choice("abc"): rng.randint(0, 9)}
    if rng.random() < 0.1:
        changes["owner_id"] = rng.choice(["owner_1", "owner_2"])
    if rng.random() < 0.1:
        changes["account_ids"] = rng.sample(ACCOUNTS, 5)
    increments = {"current_batch": 1} if rng.random() < 0.5 else {}
    if rng.random() < 0.3:
        increments["recommendations_count"] = rng.randint(0, 3)
    return changes, increments


def test_recovery_undoes_everything_done_after_the_checkpoint():
    session = make_session("running", account_ids=ACCOUNTS[:10])
    sid = session.session_id
    reference = Reference(session)
    _checkpoint(reference, sid, {"processed_accounts": ["acct_000"], "failed_accounts": []}, {})
    _update_context(reference, sid, {"failed_accounts": ["acct_001", "acct_002"]}, {})
    _update_metrics(reference, sid, {"api_call_count": 2}, [5, 6])
    _checkpoint(reference, sid, {"metadata": {"phase": "one"}}, {"current_batch": 1})
    _assert_same(sid, reference)

    # After the checkpoint: a failed account is processed, others fail and succeed, the
    # metadata, counters, processing times and even the account list change.
    _update_context(
        reference,
        sid,
        {
            "processed_accounts": ["acct_001", "acct_003"],
            "failed_accounts": ["acct_004"],
            "metadata": {"phase": "two", "extra": True},
            "account_ids": ACCOUNTS[:12],
            "owner_id": "owner_9",
        },
        {"current_batch": 3, "recommendations_count": 4},
    )
    _update_metrics(reference, sid, {"api_call_count": 7, "token_usage": 100}, [9, 9, 9])
    _assert_same(sid, reference)
    assert session_get(sid).context["processed_accounts"] == ["acct_000", "acct_001", "acct_003"]

    _recover(reference, sid)

    _assert_same(sid, reference)
    restored = AgentSession.objects.get(pk=sid)
    assert restored.account_ids == ACCOUNTS[:10]
    assert restored.owner_id == "owner_1"
    assert (restored.processed_count, restored.failed_count) == (1, 2)
    detail = SessionDetailOut.model_validate(AgentSession.objects.get(pk=sid))
    assert json.dumps(detail.model_dump(mode="json")["context"]) == json.dumps(reference.state()[0])


def test_random_work_with_crashes_always_reads_and_recovers_exactly(settings):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "CHECKPOINTS_KEPT": 3}
    rng = random.Random(1913)
    session = make_session("running", account_ids=ACCOUNTS[:20])
    sid = session.session_id
    reference = Reference(session)
    for _ in range(120):
        roll = rng.random()
        changes, increments = _changes(rng)
        if roll < 0.35:
            _update_context(reference, sid, changes, increments)
        elif roll < 0.6:
            counters = {"api_call_count": rng.randint(0, 3), "cache_hits": rng.randint(0, 2)}
            times = [rng.randint(0, 500) for _ in range(rng.randint(0, 4))]
            _update_metrics(reference, sid, counters, times)
        elif roll < 0.9:
            _checkpoint(reference, sid, changes, increments)
        else:
            _recover(reference, sid)
        _assert_same(sid, reference)


def test_pruned_checkpoints_leave_the_kept_ones_exact(settings):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "CHECKPOINTS_KEPT": 2}
    session = make_session("running", account_ids=ACCOUNTS[:8])
    sid = session.session_id
    reference = Reference(session)
    for index in range(6):
        _update_metrics(reference, sid, {"token_usage": 10}, [index])
        changes = {"processed_accounts": [ACCOUNTS[index]], "failed_accounts": [ACCOUNTS[7]]}
        if index == 3:
            changes["account_ids"] = ACCOUNTS[:9]
        _checkpoint(reference, sid, changes, {"current_batch": 1})

    kept = list(session_checkpoints(sid))
    assert [checkpoint.sequence for checkpoint in kept] == [6, 5]
    for checkpoint in kept:
        context, metrics = reference.checkpoints[checkpoint.sequence]
        assert _text(checkpoint.context) == _text(_as_jsonb(context.dump()))
        assert _text(checkpoint.metrics) == _text(_as_jsonb(metrics.dump()))

    _update_context(reference, sid, {"processed_accounts": ACCOUNTS[6:8]}, {"current_batch": 5})
    _update_metrics(reference, sid, {"error_count": 1}, [1, 2, 3])
    _recover(reference, sid)
    _assert_same(sid, reference)
    assert AgentSession.objects.get(pk=sid).account_ids == ACCOUNTS[:9]


def test_archiving_keeps_the_final_state_readable():
    session = make_session("running", account_ids=ACCOUNTS[:5])
    sid = session.session_id
    reference = Reference(session)
    for index in range(3):
        _update_metrics(reference, sid, {"api_call_count": 1}, [index])
        _checkpoint(reference, sid, {"processed_accounts": [ACCOUNTS[index]]}, {})
    services.session_complete(sid)
    AgentSession.objects.filter(pk=sid).update(finished_at="2000-01-01T00:00:00Z")
    services.sessions_cleanup_old(older_than_days=1)
    _assert_same(sid, reference)
    assert [c.sequence for c in session_checkpoints(sid)] == [3]


def test_a_batch_writes_rows_for_what_changed_only():
    session = make_session("running", account_ids=ACCOUNTS)
    sid = session.session_id
    services.session_update_metrics(sid, processing_times_ms=[1, 2])
    services.session_checkpoint(sid, context_changes={"processed_accounts": ACCOUNTS[:10]})
    services.session_update_metrics(sid, processing_times_ms=[3])
    services.session_checkpoint(
        sid, context_changes={"processed_accounts": ACCOUNTS[5:15], "failed_accounts": ["x"]}
    )
    progress = SessionProgress.objects.filter(session_id=sid).order_by("id")
    assert list(progress.values_list("sequence", "processed", "failed")) == [
        (1, ACCOUNTS[:10], []),
        (2, ACCOUNTS[10:15], ["x"]),  # only what changed
    ]
    times = SessionTimes.objects.filter(session_id=sid).order_by("id")
    assert list(times.values_list("sequence", "times_ms")) == [(1, [1, 2]), (2, [3])]
    checkpoint = session_checkpoints(sid).first()
    assert "processed_accounts" not in checkpoint.stored_context
    assert "account_ids" not in checkpoint.stored_context
    assert "account_processing_times_ms" not in checkpoint.stored_metrics


def test_the_counters_names_are_not_part_of_the_state_and_stale_rows_read_without_them():
    """Releases before 2026-12 dumped the ``COUNTERS`` class constants as fields: into
    every stored row and the API's answer, and a client could replace them."""
    session = make_session("running", account_ids=ACCOUNTS)
    sid = session.session_id
    services.session_update_context(sid, changes={"COUNTERS": ["owner_id"]})
    services.session_update_context(sid, changes={}, increments={"current_batch": 2})
    context, metrics = session_state_read(sid)
    assert "COUNTERS" not in context
    assert "COUNTERS" not in metrics
    assert context["metadata"] == {"COUNTERS": ["owner_id"]}  # an unknown key: metadata
    assert context["current_batch"] == 2
    stored = AgentSession.objects.get(pk=sid)
    assert "COUNTERS" not in stored.context
    assert "COUNTERS" not in stored.metrics

    # A row and a checkpoint the previous release wrote, with the key in their JSON.
    services.session_checkpoint(sid, context_changes={"processed_accounts": ACCOUNTS[:3]})
    before = session_state_read(sid)
    stale = {"COUNTERS": ["current_batch", "recommendations_count", "total_batches"]}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE agent_session SET context = context || %s::jsonb,"
            " metrics = metrics || %s::jsonb WHERE session_id = %s",
            [json.dumps(stale), json.dumps(stale), sid],
        )
        cursor.execute(
            "UPDATE agent_session_checkpoint SET context = context || %s::jsonb"
            " WHERE session_id = %s",
            [json.dumps(stale), sid],
        )
    assert session_state_read(sid) == before
    services.session_update_metrics(sid, counters={"api_call_count": 1})  # loads the row
    assert "COUNTERS" not in session_state_read(sid)[1]
    services.session_interrupt(sid)
    services.session_recover(sid)
    assert "COUNTERS" not in session_state_read(sid)[0]
    assert "COUNTERS" not in SessionDetailOut.model_validate(session_get(sid)).context
