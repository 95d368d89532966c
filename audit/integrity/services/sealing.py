"""Sealing recorded events into the hash chain (docs/audit.md), without a writers' lock.
Each seal carries the Merkle root of its events and, with a signing key configured, a
signed head that witnesses keep outside the database (``audit.integrity.services.witnessing``)."""

import hashlib
import logging
from collections.abc import Iterator

from django.db import connection, transaction
from django.utils import timezone

from audit import conf
from audit.integrity.canonical import (
    GENESIS_HASH,
    SEAL_HEADER_FIELDS,
    Member,
    SealHeader,
    encode_members,
    members_merkle_root,
    seal_hash,
    timestamp_micros,
)
from audit.integrity.heads import SealHead, head_sign
from audit.integrity.keys import signing_key
from audit.integrity.rows import stream_rows
from audit.integrity.selectors import audit_seal_head
from audit.models import AuditSeal

logger = logging.getLogger(__name__)

SEAL_LOCK_KEY = 6_352_890_117


def audit_events_seal(*, max_events: int | None = None) -> list[AuditSeal]:
    """Seal every event inserted by a transaction that ended before this call's snapshot
    and is not sealed yet; return the new seals (none when there is nothing to seal).

    Each row carries the id of the transaction that inserted it. The horizon is the
    oldest transaction of this database still running (the snapshot's xmin, leaving out
    transactions known to belong to other databases of the server, which cannot write
    here): every transaction below it has ended or writes elsewhere, and every
    transaction that starts later gets a larger id, so the rows with ``xact_id <
    horizon`` form a set that can never grow again. A seal covers exactly the
    rows of ``previous seal's xact_to <= xact_id < horizon``: no row is sealed twice or
    skipped, a row committed late by a long transaction falls into a later seal, and
    writers take no lock at all. Rows are read in transaction order and cut into seals
    of at most ``AUDIT_SEAL_MAX_EVENTS`` at transaction boundaries.
    """
    limit = max_events or conf.seal_max_events()
    created: list[AuditSeal] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            cursor.execute(_HORIZON_SQL)
            horizon = cursor.fetchone()[0]
        previous = audit_seal_head()
        xact_from = previous.xact_to if previous else 0
        if horizon <= xact_from:
            return created
        for xact_to, members in _member_batches(xact_from, horizon, limit):
            previous = _seal_create(previous, xact_from=xact_from, xact_to=xact_to, members=members)
            created.append(previous)
            xact_from = xact_to
    for seal in created:
        logger.info(
            "Audit seal #%d: %d events, transactions %d..%d, hash %s",
            seal.number,
            seal.event_count,
            seal.xact_from,
            seal.xact_to,
            bytes(seal.hash).hex(),
        )
    return created


# The snapshot's running transactions, less those that pg_stat_activity shows running in
# another database (transaction ids are the server's, so without this a long transaction
# in any database would hold every seal back). Whatever it cannot attribute (a backend
# not yet showing its id, a prepared transaction, stats hidden from this role) is kept,
# so an unknown only delays a seal; the snapshot's xmax when nothing here is running.
_HORIZON_SQL = """
WITH snapshot AS MATERIALIZED (SELECT pg_current_snapshot() AS s)
SELECT COALESCE(
    (SELECT min(running::text::bigint)
       FROM snapshot, pg_snapshot_xip(snapshot.s) AS running
      WHERE NOT EXISTS (
            SELECT 1 FROM pg_stat_activity AS other
             WHERE other.backend_xid = xid(running)
               AND other.datid <> (SELECT oid FROM pg_database
                                    WHERE datname = current_database()))),
    (SELECT pg_snapshot_xmax(s)::text::bigint FROM snapshot))
"""


def _member_batches(xact_from: int, horizon: int, limit: int) -> Iterator[tuple[int, list[Member]]]:
    """(xact_to, members) per seal to make; a transaction's rows never straddle two."""
    batch: list[Member] = []
    current = None
    rows = stream_rows(
        'SELECT xact_id, event_id, "timestamp", content_hash FROM audit_event'
        " WHERE xact_id >= %s AND xact_id < %s ORDER BY xact_id",
        [xact_from, horizon],
    )
    for xact_id, event_id, moment, digest in rows:
        if xact_id != current and len(batch) >= limit:
            yield xact_id, batch
            batch = []
        current = xact_id
        batch.append(Member(event_id, timestamp_micros(moment), bytes(digest)))
    if batch:
        yield horizon, batch


def _seal_create(
    previous: AuditSeal | None, *, xact_from: int, xact_to: int, members: list[Member]
) -> AuditSeal:
    """A seal with its Merkle root (format 2), signed when a signing key is configured."""
    blob = encode_members(members)
    moments = [member.timestamp for member in members]
    header = SealHeader(
        number=previous.number + 1 if previous else 1,
        previous_hash=bytes(previous.hash) if previous else GENESIS_HASH,
        xact_from=xact_from,
        xact_to=xact_to,
        event_count=len(members),
        first_timestamp=min(moments),
        last_timestamp=max(moments),
        sealed_at=timezone.now(),
        members_digest=hashlib.sha256(blob).digest(),
        merkle_root=members_merkle_root(blob),
    )
    digest = seal_hash(header)
    head = None
    key = signing_key()
    if key is not None:
        head = head_sign(
            SealHead(
                seal=header.number,
                hash=digest,
                merkle_root=header.merkle_root,
                events=header.event_count,
                time=header.sealed_at,
                key_id="",
            ),
            key,
        )
    return AuditSeal.objects.create(
        **{name: getattr(header, name) for name in SEAL_HEADER_FIELDS},
        hash=digest,
        members=blob,
        signature=head.signature if head else None,
        key_id=head.key_id if head else "",
    )


# --- Partition maintenance -------------------------------------------------------------
