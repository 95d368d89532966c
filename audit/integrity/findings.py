"""What verification finds, and the checks that online verification (against the
database) and offline verification (of an archive file) share. Pure Python."""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from audit.integrity.canonical import (
    GENESIS_HASH,
    MEMBER_SIZE,
    SealHeader,
    decode_members,
    members_merkle_root,
    micros_timestamp,
    seal_hash,
    timestamp_text,
)

EventKey = tuple[UUID, int]  # (event id, timestamp in microseconds): the primary key


class ProblemKind(StrEnum):
    MODIFIED = "modified event"
    DELETED = "deleted event"
    INSERTED = "inserted event"
    BROKEN_SEAL = "broken seal"
    UNGUARDED = "unguarded table"
    MISSING_PARTITION = "missing partition"
    WITNESS = "witness"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    detail: str
    event_id: UUID | None = None
    seal: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def describe(key: EventKey) -> str:
    event_id, micros = key
    return f"{event_id} at {timestamp_text(micros_timestamp(micros))}"


def check_seal(header: SealHeader, stored_hash: bytes) -> list[Problem]:
    """The seal's hash still covers its header (number, link, range, members digest)."""
    if seal_hash(header) == stored_hash:
        return []
    return [
        Problem(
            ProblemKind.BROKEN_SEAL,
            f"seal #{header.number}: its hash does not match its header (a field was altered)",
            seal=header.number,
        )
    ]


def check_members(header: SealHeader, members: bytes) -> list[Problem]:
    """The seal's member list is the one its digest and count were sealed with."""
    number = header.number
    if hashlib.sha256(members).digest() != header.members_digest:
        detail = "its member list does not match the digest it was sealed with"
    elif len(members) != header.event_count * MEMBER_SIZE:
        detail = f"lists {len(members) // MEMBER_SIZE} events, its header says {header.event_count}"
    elif header.merkle_root is not None and members_merkle_root(members) != header.merkle_root:
        detail = "its Merkle root does not match its member list"
    else:
        return []
    return [Problem(ProblemKind.BROKEN_SEAL, f"seal #{number}: {detail}", seal=number)]


def check_link(previous: tuple[SealHeader, bytes] | None, header: SealHeader) -> list[Problem]:
    """``header`` follows ``previous`` (None: it is the first seal) in the chain."""
    number = header.number
    if previous is None:
        expected_number, expected_hash, expected_xact = 1, GENESIS_HASH, 0
    else:
        before, before_hash = previous
        expected_number, expected_hash = before.number + 1, before_hash
        expected_xact = before.xact_to
    problems = []
    if number != expected_number:
        problems.append(
            Problem(
                ProblemKind.BROKEN_SEAL,
                f"seal #{expected_number} is missing: the chain jumps to seal #{number}",
                seal=expected_number,
            )
        )
    elif header.previous_hash != expected_hash:
        problems.append(
            Problem(
                ProblemKind.BROKEN_SEAL,
                f"seal #{number}: does not link to seal #{number - 1} (previous hash differs)",
                seal=number,
            )
        )
    if number == expected_number and header.xact_from != expected_xact:
        problems.append(
            Problem(
                ProblemKind.BROKEN_SEAL,
                f"seal #{number}: covers transactions from {header.xact_from},"
                f" the previous seal ended at {expected_xact}",
                seal=number,
            )
        )
    return problems


def members_in_scope(
    blob: bytes, start_micros: int | None, end_micros: int | None
) -> dict[EventKey, bytes]:
    """The seal's members whose timestamp lies in ``[start, end)`` (bounds optional)."""
    scoped: dict[EventKey, bytes] = {}
    for member in decode_members(blob):
        if start_micros is not None and member.micros < start_micros:
            continue
        if end_micros is not None and member.micros >= end_micros:
            continue
        scoped[(member.event_id, member.micros)] = member.content_hash
    return scoped


def reconcile(
    seal: int, sealed: Mapping[EventKey, bytes], found: Mapping[EventKey, bytes]
) -> tuple[list[Problem], list[EventKey]]:
    """Compare what seal #``seal`` lists (key -> hash) with the events found for it
    (key -> hash recomputed from their content).

    Returns the problems (inserted, modified) and the keys of listed events that were
    not found: the caller decides whether each is deleted or legitimately retired. An
    event whose key changed (a new timestamp) is reported once, as modified.
    """
    problems: list[Problem] = []
    inserted = [key for key in found if key not in sealed]
    missing = [key for key in sealed if key not in found]
    moved = {key[0]: key for key in missing} if inserted and missing else {}
    for key in inserted:
        original = moved.pop(key[0], None)
        if original is not None:
            missing.remove(original)
            problems.append(
                Problem(
                    ProblemKind.MODIFIED,
                    f"{describe(original)}: its timestamp was changed to"
                    f" {timestamp_text(micros_timestamp(key[1]))} after seal #{seal}",
                    event_id=key[0],
                    seal=seal,
                )
            )
            continue
        problems.append(
            Problem(
                ProblemKind.INSERTED,
                f"{describe(key)}: not listed by seal #{seal}, which covers its transaction",
                event_id=key[0],
                seal=seal,
            )
        )
    for key, digest in found.items():
        if key in sealed and sealed[key] != digest:
            problems.append(
                Problem(
                    ProblemKind.MODIFIED,
                    f"{describe(key)}: its content differs from what seal #{seal} recorded",
                    event_id=key[0],
                    seal=seal,
                )
            )
    return problems, missing


def deleted(seal: int, keys: Iterable[EventKey]) -> list[Problem]:
    return [
        Problem(
            ProblemKind.DELETED,
            f"{describe(key)}: listed by seal #{seal}, no longer present",
            event_id=key[0],
            seal=seal,
        )
        for key in keys
    ]


__all__ = [
    "EventKey",
    "Problem",
    "ProblemKind",
    "check_link",
    "check_members",
    "check_seal",
    "deleted",
    "members_in_scope",
    "reconcile",
]
