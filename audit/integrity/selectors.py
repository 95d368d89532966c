"""Reads of integrity: the seal head, sealing progress, witnesses' health, proofs."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection

from audit.exceptions import (
    PROOF_NOT_SEALED,
    PROOF_OLD_SEAL,
    PROOF_UNSIGNED,
    AuditEventNotFound,
    ProofUnavailable,
)
from audit.integrity.archive import seal_header_json
from audit.integrity.canonical import (
    MEMBER_SIZE,
    Member,
    member_bytes,
    merkle_audit_path,
    timestamp_micros,
)
from audit.integrity.proof import PROOF_FORMAT
from audit.integrity.rows import stream_events
from audit.integrity.witnesses import configured_witnesses
from audit.models import AuditSeal, WitnessStatus


def audit_seal_head() -> AuditSeal | None:
    """The newest seal, without its member list."""
    return AuditSeal.objects.defer("members").order_by("-number").first()


def audit_event_proof(event_id: UUID) -> dict[str, Any]:
    """The inclusion proof of one event (``audit.proof``): its canonical text, its seal
    member, the audit path to its seal's Merkle root, the seal's header and signed head.
    ``AuditEventNotFound``; ``ProofUnavailable`` when it is not sealed yet, or sealed by
    a seal without a Merkle root or a signature."""
    rows = list(stream_events("event_id = %s", [event_id]))
    if not rows:
        raise AuditEventNotFound(event_id)
    row = rows[0]
    seal = (
        AuditSeal.objects.filter(xact_from__lte=row.xact_id, xact_to__gt=row.xact_id)
        .order_by("-xact_from")
        .first()
    )
    if seal is None:
        raise ProofUnavailable(event_id, PROOF_NOT_SEALED)
    if seal.merkle_root is None:
        raise ProofUnavailable(event_id, PROOF_OLD_SEAL.format(seal=seal.number))
    head = seal.head
    if head is None:
        raise ProofUnavailable(event_id, PROOF_UNSIGNED.format(seal=seal.number))
    blob = bytes(seal.members)
    leaves = [blob[i : i + MEMBER_SIZE] for i in range(0, len(blob), MEMBER_SIZE)]
    member = member_bytes(Member(row.event_id, timestamp_micros(row.timestamp), row.content_hash))
    try:
        index = leaves.index(member)
    except ValueError:  # the event differs from what its seal listed: verify_audit says how
        raise ProofUnavailable(
            event_id, f"seal #{seal.number} does not list it as it is (run verify_audit)"
        ) from None
    return {
        "format": PROOF_FORMAT,
        "event": {
            "event_id": str(row.event_id),
            "canonical": row.canonical_text(),
            "content_hash": row.content_hash.hex(),
        },
        "leaf": {"index": index, "member": member.hex()},
        "tree_size": len(leaves),
        "path": [node.hex() for node in merkle_audit_path(leaves, index)],
        "seal": seal_header_json(seal.header, bytes(seal.hash)),
        "head": head.to_json(),
    }


# --- witnesses ---------------------------------------------------------------------------

# A witness this many seals behind the chain's head is reported: the publisher sends
# every missing head after each seal, so a healthy witness is at most one behind.
WITNESS_MAX_LAG_SEALS = 3


@dataclass(frozen=True)
class WitnessHealth:
    """One configured witness, as the publisher last left it (``WitnessStatus``)."""

    name: str
    published_seal: int  # the newest seal it holds; 0: none
    behind: int  # seals of the chain it lacks
    failures: int  # publishing attempts that failed in a row
    last_error: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None

    @property
    def failing(self) -> bool:
        return self.failures > 0

    @property
    def lagging(self) -> bool:
        return self.behind > WITNESS_MAX_LAG_SEALS

    @property
    def ok(self) -> bool:
        return not self.failing and not self.lagging


@dataclass(frozen=True)
class WitnessesHealth:
    head: AuditSeal | None  # the chain's newest seal
    witnesses: list[WitnessHealth]

    @property
    def chain_head(self) -> int:
        return self.head.number if self.head is not None else 0

    @property
    def ok(self) -> bool:
        """No configured witness failing or lagging (none configured: nothing failing)."""
        return all(witness.ok for witness in self.witnesses)


def audit_witnesses_health() -> WitnessesHealth:
    """The seal chain's head and each configured witness's state (two queries); shown by
    /healthz and the dashboard's audit explorer. A witness never tried yet holds nothing."""
    head = audit_seal_head()
    number = head.number if head is not None else 0
    names = [witness.name for witness in configured_witnesses()]
    statuses = {status.name: status for status in WitnessStatus.objects.filter(name__in=names)}
    witnesses = []
    for name in names:
        status = statuses.get(name) or WitnessStatus(name=name)
        witnesses.append(
            WitnessHealth(
                name=name,
                published_seal=status.published_seal,
                behind=max(number - status.published_seal, 0),
                failures=status.failures,
                last_error=status.last_error,
                last_attempt_at=status.last_attempt_at,
                last_success_at=status.last_success_at,
            )
        )
    return WitnessesHealth(head=head, witnesses=witnesses)


# --- operations: sealing progress and the default partition (metrics) ---------------------


@dataclass(frozen=True)
class SealProgress:
    last_sealed_at: datetime | None  # when the newest seal was made; None: no seal yet
    oldest_unsealed_at: datetime | None  # when the oldest event not sealed yet was recorded


# The events not sealed yet are those of transactions from the head's ``xact_to`` on.
# The bound is sent as a value, not a subquery, so the planner sees how few rows lie
# past it and takes the BRIN index on xact_id: the trail's tail, not the whole trail.
_OLDEST_UNSEALED_SQL = (
    'SELECT min(COALESCE(recorded_at, "timestamp")) FROM audit_event WHERE xact_id >= %s'
)


def audit_seal_progress() -> SealProgress:
    """How far sealing has come: the newest seal's time and the oldest unsealed event's
    (by ``recorded_at``, the database's clock, not the time the event claims)."""
    head = AuditSeal.objects.order_by("-number").values_list("xact_to", "sealed_at").first()
    xact_to, last_sealed_at = head if head is not None else (0, None)
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_UNSEALED_SQL, [xact_to])
        (oldest_unsealed_at,) = cursor.fetchone()
    return SealProgress(last_sealed_at=last_sealed_at, oldest_unsealed_at=oldest_unsealed_at)
