"""Events written before the integrity migration get hashes and can be sealed in
bounded seals; after the recording-time migration they keep their hash and verify, and a
trail sealed by the previous release keeps its seals while signing starts with the next."""

import hashlib
import json
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.integrity.canonical import (
    GENESIS_HASH,
    SEAL_HEADER_FIELDS,
    Member,
    SealHeader,
    encode_members,
    seal_hash,
    timestamp_micros,
)
from audit.integrity.findings import ProblemKind
from audit.integrity.rows import stream_events
from audit.integrity.verification import audit_trail_verify
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_event_record
from tests.audit.support import as_superuser, make_month, seal_everything

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("audit", "0002_seals_archives_time_index")
PREVIOUS = ("audit", "0003_integrity")
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


def _format_one_seals(rows: list[tuple[int, Member]]) -> None:
    """Seal ``rows`` (xact id, member) the way the release before 0004 did: one seal per
    transaction, no Merkle root, no signature, written into 0003's ``audit_seal``."""
    previous, number = GENESIS_HASH, 0
    xacts = sorted({xact for xact, _ in rows})
    bounds = [*xacts[1:], xacts[-1] + 1]
    with connection.cursor() as cursor:
        for xact_from, xact_to in zip([0, *xacts[1:]], bounds, strict=True):
            members = [member for xact, member in rows if xact_from <= xact < xact_to]
            blob = encode_members(members)
            moments = [member.timestamp for member in members]
            number += 1
            header = SealHeader(
                number=number,
                previous_hash=previous,
                xact_from=xact_from,
                xact_to=xact_to,
                event_count=len(members),
                first_timestamp=min(moments),
                last_timestamp=max(moments),
                sealed_at=timezone.now(),
                members_digest=hashlib.sha256(blob).digest(),
            )
            previous = seal_hash(header)
            cursor.execute(
                "INSERT INTO audit_seal (number, previous_hash, xact_from, xact_to,"
                " event_count, first_timestamp, last_timestamp, sealed_at, members_digest,"
                " hash, members) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    *(getattr(header, name) for name in SEAL_HEADER_FIELDS[:-1]),
                    previous,
                    blob,
                ],
            )


def test_a_trail_sealed_before_witnessed_seals_keeps_verifying_and_the_next_seal_is_signed(
    drop_new_partitions, settings
):
    """The previous release's trail: format-1 events in format-1 seals (no Merkle root, no
    signature). Through 0004 nothing is rewritten; the old seals verify as they are, the
    first new seal carries a Merkle root and a signed head the witness gets, and tampering
    with an old event is still named."""
    witness = Path(settings.AUDIT_WITNESSES[0]["OPTIONS"]["path"])
    witness.unlink(missing_ok=True)
    _migrate(PREVIOUS)
    try:
        for group in range(3):  # three transactions: three seals
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO audit_event (event_id, "timestamp", event_type, actor,
                                             action, resource, metadata)
                    SELECT gen_random_uuid(),
                           '2026-11-02'::timestamptz + (%s * 100 + i) * interval '1 second',
                           'system', 'legacy', 'probe', 'r', jsonb_build_object('i', i)
                      FROM generate_series(1, 100) AS i
                    """,
                    [group],
                )
        with connection.cursor() as cursor:
            cursor.execute(
                'SELECT xact_id, event_id, "timestamp", content_hash FROM audit_event'
                " ORDER BY xact_id"
            )
            rows = [
                (xact, Member(event_id, timestamp_micros(moment), bytes(digest)))
                for xact, event_id, moment, digest in cursor.fetchall()
            ]
        _format_one_seals(rows)
        with connection.cursor() as cursor:
            cursor.execute("SELECT number, hash FROM audit_seal ORDER BY number")
            old_seals = [(number, bytes(digest)) for number, digest in cursor.fetchall()]
    finally:
        _migrate(LATEST)
    assert len(old_seals) == 3

    make_month(timezone.now())
    new = audit_event_record(
        event_type="system", actor="test", action="probe", resource="r", metadata={}
    )
    seal_everything()

    seals = list(AuditSeal.objects.order_by("number"))
    assert [(seal.number, bytes(seal.hash)) for seal in seals[:3]] == old_seals  # unchanged
    assert all(seal.merkle_root is None and seal.signature is None for seal in seals[:3])
    assert all(seal.merkle_root is not None and seal.head for seal in seals[3:])
    published = [json.loads(line)["seal"] for line in witness.read_text().splitlines()]
    assert published == [seal.number for seal in seals[3:]]  # unsigned seals have no head
    report = audit_trail_verify()
    assert report.ok, report.problems
    assert (report.seals, report.signed) == (len(seals), len(seals) - 3)
    assert AuditEvent.objects.get(event_id=new.event_id).recorded_at is not None

    as_superuser(
        "UPDATE audit_event SET metadata = '{\"i\": -1}' WHERE actor = 'legacy'"
        " AND metadata->>'i' = '7' AND \"timestamp\" < '2026-11-02 00:01:00+00'"
    )
    report = audit_trail_verify()
    assert not report.ok
    assert {problem.kind for problem in report.problems} == {ProblemKind.MODIFIED}
