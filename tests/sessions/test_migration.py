"""The session-state migration meets a populated database of the previous release:
sessions whose rows hold big whole contexts, whole checkpoints, a sealed audit trail. It
rewrites no table, everything reads exactly as before, old checkpoints restore exactly,
and the sessions carry on with the new code."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.integrity.verification import audit_trail_verify
from audit.services import audit_event_record
from sessions import services
from sessions.models import AgentSession, SessionProgress
from sessions.selectors import session_checkpoints, session_state_read
from tests.audit.support import seal_everything

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("agent_sessions", "0005_agentsession_created_by")]
AFTER = [("agent_sessions", "0006_session_state_rows")]
ACCOUNTS = [f"acct_old_{index:05d}" for index in range(3000)]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _whole(processed, failed, batch, times, **extra):
    context = {
        "account_ids": ACCOUNTS,
        "owner_id": "owner_old",
        "current_batch": batch,
        "total_batches": 300,
        "processed_accounts": sorted(processed),
        "failed_accounts": sorted(failed),
        "recommendations_count": batch * 2,
        "metadata": {"region": "emea", **extra},
        "checkpoint_timestamp": "2026-01-01T00:00:00Z",
    }
    metrics = {
        "total_duration_ms": 0,
        "account_processing_times_ms": times,
        "api_call_count": batch * 3,
        "cache_hits": 0,
        "cache_misses": 0,
        "token_usage": batch * 100,
        "error_count": len(failed),
    }
    return context, metrics


def _seed_previous_release(old):
    """Sessions as the previous release wrote them: the whole state in each row."""
    Session = old.get_model("agent_sessions", "AgentSession")
    Checkpoint = old.get_model("agent_sessions", "SessionCheckpoint")
    now = timezone.now()
    sessions = {}
    for name, status in (("crashed", "interrupted"), ("finished", "completed")):
        checkpointed = _whole(ACCOUNTS[:2000], ACCOUNTS[2000:2010], 201, list(range(2010)))
        # After its checkpoint, the crashed session's agent did more before it died.
        current = _whole(
            ACCOUNTS[:2000] + ACCOUNTS[2005:2007] + ACCOUNTS[2020:2100],
            ACCOUNTS[2000:2005] + ACCOUNTS[2007:2020],
            211,
            list(range(2120)),
            crashed=True,
        )
        session = Session.objects.create(
            session_id=f"session_old_{name}",
            orchestrator_id="old",
            status=status,
            context=current[0],
            metrics=current[1],
            account_ids=ACCOUNTS,
            owner_id="owner_old",
            version=2,
            created_at=now,
            updated_at=now,
            started_at=now,
            last_checkpoint_sequence=2,
        )
        for sequence, (context, metrics) in enumerate(
            [_whole(ACCOUNTS[:1990], [], 199, list(range(1990))), checkpointed], start=1
        ):
            Checkpoint.objects.create(
                session=session,
                sequence=sequence,
                status="running",
                context=context,
                metrics=metrics,
                size_bytes=len(json.dumps(context)) + len(json.dumps(metrics)),
                created_at=now,
            )
        audit_event_record(
            event_type="session_lifecycle",
            action="create",
            actor="system",
            resource=f"session:{session.session_id}",
            session_id=session.session_id,
            metadata={"version": 1},
        )
        sessions[name] = (session.session_id, current, checkpointed)
    return sessions


def _raw(table, key, value):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT context::text, metrics::text FROM {table} WHERE {key} = %s", [value]
        )
        return tuple(json.loads(text) for text in cursor.fetchone())


def _relfilenodes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relfilenode FROM pg_class"
            " WHERE relname IN ('agent_session', 'agent_session_checkpoint')"
        )
        return dict(cursor.fetchall())


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    """The next tests need every migration applied, later ones included."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_keeps_every_state_and_old_checkpoints_restore_exactly():
    old = _migrate(BEFORE)
    try:
        sessions = _seed_previous_release(old)
        seal_everything()
        before = {sid: _raw("agent_session", "session_id", sid) for sid, _, _ in sessions.values()}
        files = _relfilenodes()
    finally:
        _migrate(AFTER)

    assert _relfilenodes() == files  # no table was rewritten
    assert audit_trail_verify().ok
    for sid, (context, metrics) in before.items():
        assert session_state_read(sid) == (context, metrics)
        assert json.dumps(AgentSession.objects.get(pk=sid).context) == json.dumps(context)

    crashed = sessions["crashed"][0]
    newest = session_checkpoints(crashed).first()
    assert (newest.context, newest.metrics) == _raw("agent_session_checkpoint", "id", newest.pk)

    services.session_recover(crashed)

    assert session_state_read(crashed) == _raw("agent_session_checkpoint", "id", newest.pk)
    recovered = AgentSession.objects.get(pk=crashed)
    assert (recovered.processed_count, recovered.failed_count) == (2000, 10)
    assert "processed_accounts" not in recovered.stored_context

    # The session carries on with the new code, and recovers exactly again.
    services.session_update_metrics(crashed, processing_times_ms=[7, 8])
    checkpoint = services.session_checkpoint(
        crashed,
        context_changes={"processed_accounts": ACCOUNTS[2000:2003]},
        context_increments={"current_batch": 1},
    )
    at_checkpoint = session_state_read(crashed)
    assert at_checkpoint == (checkpoint.context, checkpoint.metrics)
    assert at_checkpoint[0]["failed_accounts"] == ACCOUNTS[2003:2010]
    assert at_checkpoint[1]["account_processing_times_ms"][-3:] == [2009, 7, 8]
    services.session_update_context(
        crashed,
        changes={"processed_accounts": ACCOUNTS[2500:2600]},
        increments={"current_batch": 3},
    )
    services.session_interrupt(crashed)
    services.session_recover(crashed)
    assert session_state_read(crashed) == at_checkpoint
    session = AgentSession.objects.get(pk=crashed)
    assert (session.processed_count, session.failed_count) == (2003, 7)
    assert SessionProgress.objects.filter(session_id=crashed).count() == 2  # restored, batch

    # A finished session of the previous release is archived down to its last checkpoint.
    finished = sessions["finished"][0]
    services.session_archive(finished)
    assert session_state_read(finished) == before[finished]
