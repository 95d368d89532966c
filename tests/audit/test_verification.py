"""verify_audit finds every kind of tampering a superuser can do with raw SQL after
turning the triggers off, names it, and exits non-zero."""

import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection

from audit.integrity.findings import ProblemKind
from audit.integrity.rows import stream_events
from audit.integrity.verification import audit_trail_verify
from audit.models import AuditEvent
from audit.selectors import audit_seal_head
from tests.audit.support import as_superuser, record, seal_everything, stored

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trail() -> list[AuditEvent]:
    """Ten sealed events in two seals, verified clean."""
    events = record(6, session_id="session_a")
    seal_everything()
    events += record(4, session_id="session_b")
    seal_everything()
    report = audit_trail_verify()
    assert report.ok, report.problems
    assert report.events == AuditEvent.objects.count()
    return events


def _kinds(report) -> list[str]:
    return [problem.kind for problem in report.problems]


def _where(event: AuditEvent) -> tuple[str, list]:
    return 'event_id = %s AND "timestamp" = %s', [event.event_id, event.timestamp]


def test_a_clean_trail_verifies_and_reports_the_chain_head(trail, capsys):
    call_command("verify_audit")
    out = capsys.readouterr().out
    head = audit_seal_head()
    assert f"Chain head: seal #{head.number} {bytes(head.hash).hex()}" in out
    assert "no problem found" in out


def test_a_modified_event_is_named(trail):
    target = trail[2]
    where, params = _where(target)
    as_superuser(f"UPDATE audit_event SET actor = 'forger' WHERE {where}", params)
    report = audit_trail_verify()
    assert _kinds(report) == [ProblemKind.MODIFIED]
    assert report.problems[0].event_id == target.event_id
    assert "differs from what seal #" in report.problems[0].detail


# What a forger who knows the scheme does: let the database compute the new hash.
REHASH = """content_hash = audit_event_content_hash_v2(
    event_id, "timestamp", session_id, event_type, actor, action, resource, metadata,
    recorded_at)"""


def test_a_modified_and_rehashed_event_is_still_caught_by_its_seal(trail):
    target = trail[7]
    where, params = _where(target)
    before = bytes(stored(target, "content_hash"))
    as_superuser(f"UPDATE audit_event SET metadata = '{{\"n\": 99}}' WHERE {where}", params)
    as_superuser(f"UPDATE audit_event SET {REHASH} WHERE {where}", params)
    (row,) = stream_events(where, params)
    assert row.content_hash == row.recomputed_hash() != before  # consistent with itself
    report = audit_trail_verify()
    assert [(p.kind, p.event_id) for p in report.problems] == [
        (ProblemKind.MODIFIED, target.event_id)
    ]


def test_an_altered_stored_hash_is_named(trail):
    where, params = _where(trail[0])
    as_superuser(f"UPDATE audit_event SET content_hash = sha256('x') WHERE {where}", params)
    report = audit_trail_verify()
    assert [(p.kind, p.event_id) for p in report.problems] == [
        (ProblemKind.MODIFIED, trail[0].event_id)
    ]
    assert "stored hash was altered" in report.problems[0].detail


def test_a_changed_timestamp_is_one_modified_event(trail):
    where, params = _where(trail[1])
    as_superuser(
        f'UPDATE audit_event SET "timestamp" = "timestamp" - interval \'1 hour\' WHERE {where}',
        params,
    )
    report = audit_trail_verify()
    assert [(p.kind, p.event_id) for p in report.problems] == [
        (ProblemKind.MODIFIED, trail[1].event_id)
    ]
    assert "timestamp was changed" in report.problems[0].detail


def test_a_deleted_event_is_named(trail):
    where, params = _where(trail[4])
    assert as_superuser(f"DELETE FROM audit_event WHERE {where}", params) == 1
    report = audit_trail_verify()
    assert [(p.kind, p.event_id) for p in report.problems] == [
        (ProblemKind.DELETED, trail[4].event_id)
    ]
    assert "no longer present" in report.problems[0].detail


def test_an_event_inserted_into_a_sealed_range_is_named(trail):
    """A forged event backdated into sealed history: even with a correct content hash
    and a transaction id inside a sealed range, no seal lists it."""
    victim = trail[3]
    forged_id = uuid.uuid4()
    as_superuser(
        f"""
        INSERT INTO audit_event (event_id, "timestamp", session_id, event_type, actor, action,
                                 resource, metadata, content_hash, xact_id)
        SELECT %s, "timestamp" + interval '1 microsecond', session_id, event_type, actor,
               action, resource, metadata, content_hash, xact_id
          FROM audit_event WHERE {_where(victim)[0]}
        """,
        [forged_id, *_where(victim)[1]],
    )
    as_superuser(f"UPDATE audit_event SET {REHASH} WHERE event_id = %s", [forged_id])
    report = audit_trail_verify()
    assert [(p.kind, p.event_id) for p in report.problems] == [(ProblemKind.INSERTED, forged_id)]


def test_an_event_forged_with_a_future_transaction_id_is_named(trail):
    forged_id = uuid.uuid4()
    as_superuser(
        """
        INSERT INTO audit_event (event_id, "timestamp", event_type, actor, action, resource,
                                 metadata, content_hash, xact_id)
        VALUES (%s, now(), 'system', 'x', 'y', 'z', '{}', sha256('x'), 9000000000000)
        """,
        [forged_id],
    )
    report = audit_trail_verify()
    assert ProblemKind.INSERTED in _kinds(report)
    assert {p.event_id for p in report.problems} == {forged_id}


def test_an_unsealed_event_modified_before_its_seal_is_named(trail):
    (fresh,) = record(1, actor="fresh")
    where, params = _where(fresh)
    as_superuser(f"UPDATE audit_event SET actor = 'forger' WHERE {where}", params)
    report = audit_trail_verify()
    assert [(p.kind, p.event_id) for p in report.problems] == [
        (ProblemKind.MODIFIED, fresh.event_id)
    ]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("UPDATE audit_seal SET event_count = event_count + 1 WHERE number = 1", "seal #1"),
        ("UPDATE audit_seal SET sealed_at = now() WHERE number = 2", "seal #2"),
        (
            "UPDATE audit_seal SET members = substring(members from 57) WHERE number = 1",
            "seal #1: its member list",
        ),
        ("DELETE FROM audit_seal WHERE number = 1", "seal #1 is missing"),
        ("UPDATE audit_seal SET previous_hash = sha256('x') WHERE number = 2", "seal #2"),
    ],
)
def test_a_broken_seal_is_named(trail, tamper, message):
    as_superuser(tamper)
    report = audit_trail_verify()
    assert ProblemKind.BROKEN_SEAL in _kinds(report)
    assert any(message in p.detail for p in report.problems if p.kind == ProblemKind.BROKEN_SEAL)


def test_a_chain_rewritten_from_scratch_is_caught_by_an_anchor_kept_outside(trail, settings):
    settings.AUDIT_WITNESSES = []  # no witness: only the anchor knows better
    anchor = audit_seal_head()
    anchor_hash = bytes(anchor.hash)
    # The most thorough forger: change an event and its hash, then reseal everything.
    where, params = _where(trail[0])
    as_superuser(f"UPDATE audit_event SET actor = 'forger' WHERE {where}", params)
    as_superuser(f"UPDATE audit_event SET {REHASH} WHERE {where}", params)
    as_superuser("DELETE FROM audit_seal")
    seal_everything()
    assert audit_trail_verify().ok  # consistent with itself...
    report = audit_trail_verify(anchors={anchor.number: anchor_hash})
    assert _kinds(report) == [ProblemKind.BROKEN_SEAL]  # ...not with the anchor
    assert "outside the database" in report.problems[0].detail


def test_disabling_a_trigger_is_refused(trail):
    with pytest.raises(DatabaseError, match="guards cannot be removed"), connection.cursor() as c:
        c.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    assert audit_trail_verify().ok


def test_a_trigger_disabled_behind_the_ddl_guard_is_reported(trail):
    """A superuser who first disables the event trigger, then a guard trigger."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER EVENT TRIGGER audit_guard_alter DISABLE")
        cursor.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    try:
        report = audit_trail_verify()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
            cursor.execute("ALTER EVENT TRIGGER audit_guard_alter ENABLE ALWAYS")
    assert set(_kinds(report)) == {ProblemKind.UNGUARDED}
    assert any("audit_event_append_only" in p.detail for p in report.problems)
    assert any("audit_guard_alter" in p.detail for p in report.problems)


def test_a_time_range_checks_the_events_of_that_range_only(trail):
    old = record(1, timestamp=datetime(2026, 11, 2, tzinfo=UTC))[0]
    seal_everything()
    where, params = _where(old)
    as_superuser(f"DELETE FROM audit_event WHERE {where}", params)
    later = datetime(2026, 11, 3, tzinfo=UTC)
    assert audit_trail_verify(start=later).ok
    report = audit_trail_verify(start=datetime(2026, 11, 1, tzinfo=UTC), end=later)
    assert [(p.kind, p.event_id) for p in report.problems] == [(ProblemKind.DELETED, old.event_id)]


def test_the_command_exits_non_zero_naming_each_problem(trail, capsys):
    where, params = _where(trail[5])
    as_superuser(f"DELETE FROM audit_event WHERE {where}", params)
    with pytest.raises(CommandError, match="1 problem"):
        call_command("verify_audit", "--from", "2000-01-01", "--to", "2100-01-01")
    err = capsys.readouterr().err
    assert f"deleted event: {trail[5].event_id}" in err


def test_the_command_checks_anchors_and_rejects_bad_arguments(trail):
    head = audit_seal_head()
    call_command("verify_audit", "--anchor", f"{head.number}:{bytes(head.hash).hex()}")
    with pytest.raises(CommandError, match="1 problem"):
        call_command("verify_audit", "--anchor", f"{head.number}:{'0' * 64}")
    with pytest.raises(CommandError, match="SEAL_NUMBER:SHA256_HEX"):
        call_command("verify_audit", "--anchor", "nonsense")
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("verify_audit", "--from", "yesterday")
    with pytest.raises(CommandError, match="--from must be before --to"):
        call_command("verify_audit", "--from", "2030-01-02", "--to", "2030-01-01")
