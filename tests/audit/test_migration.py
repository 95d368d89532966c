"""Events written before the integrity migration get hashes and can be sealed in
bounded seals; after the recording-time migration they keep their hash and verify."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.models import AuditSeal
from audit.rows import stream_events
from audit.verification import audit_trail_verify
from tests.audit.support import make_month, seal_everything

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("audit", "0002_seals_archives_time_index")
LATEST = ("audit", "0004_witnessed_seals_recording_time")


def _migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def test_older_events_are_hashed_and_sealed_in_groups_of_ten_thousand(drop_new_partitions):
    _migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO audit_event (event_id, "timestamp", event_type, actor, action,
                                         resource, metadata)
                SELECT gen_random_uuid(), '2026-11-01'::timestamptz + i * interval '1 second',
                       'system', 'legacy', 'probe', 'r', jsonb_build_object('i', i)
                  FROM generate_series(1, 25000) AS i
                """
            )
    finally:
        # Through 0003 (hashes) and 0004 (recording time, Merkle roots, signed heads): the
        # older events keep their format-1 hash, and the first new seals list them.
        _migrate(LATEST)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT xact_id), max(xact_id) FROM audit_event")
        groups, highest = cursor.fetchone()
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        assert highest < cursor.fetchone()[0]
    assert groups == 3
    sample = list(stream_events("actor = 'legacy' AND mod((metadata->>'i')::int, 997) = 0"))
    assert sample
    assert all(row.recomputed_hash() == row.content_hash for row in sample)

    seal_everything(max_events=10_000)
    assert [seal.event_count for seal in AuditSeal.objects.order_by("number")] == [
        10_000,
        10_000,
        5_000,
    ]
    assert all(row.recorded_at is None for row in sample)
    make_month(timezone.now())  # verification wants the current month's partition
    assert all(seal.merkle_root is not None for seal in AuditSeal.objects.all())
    assert audit_trail_verify().ok
