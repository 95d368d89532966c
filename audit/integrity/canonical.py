"""The byte forms that audit hashes are computed over, defined once.

Pure Python with no Django import: the offline archive verifier
(``python -m audit.archive PATH``) uses this module on a machine without the project's
database. docs/audit.md specifies the same forms in prose.

**Event.** An event's canonical form is the UTF-8 text PostgreSQL prints for::

    jsonb_build_object('event_id', event_id::text, 'timestamp', <UTC text>,
                       'session_id', session_id, 'event_type', event_type,
                       'actor', actor, 'action', action, 'resource', resource,
                       'metadata', metadata)::text

jsonb prints object keys ordered by byte length, then bytewise, with ``", "`` and
``": "`` separators, and escapes strings its own way (see :func:`jsonb_string`). The
database computes ``content_hash = sha256(canonical)`` in a BEFORE INSERT trigger (so
every insert path gets it); this module rebuilds the same text from the columns and the
``metadata::text`` PostgreSQL returns, so a verifier never trusts a function stored in
the database it is checking. An archive line *is* the canonical text, so
``sha256(line)`` is the event's hash.

**Seal member.** 56 bytes: the event id (16 bytes), its timestamp as signed big-endian
microseconds since 1970-01-01 UTC (8 bytes), its content hash (32 bytes). A seal's
members are sorted by (timestamp, event id).

**Seal.** ``sha256`` of the UTF-8 text from :func:`seal_text`: one ``key=value`` line per
header field, including the previous seal's hash (the chain), the sha256 of the
concatenated members and, from seal format 2, the Merkle root of the members.

**Merkle tree.** RFC 6962 (Certificate Transparency): a seal's members, in their sorted
order, are the leaves (``sha256(0x00 || member)``), nodes are ``sha256(0x01 || left ||
right)``, and a tree of *n* leaves splits at the largest power of two below *n*. An
inclusion proof (the audit path) shows one event belongs to a seal with log2(n) hashes.

**Recording time.** From event hash format 2 the database stamps each event's
``recorded_at`` and it is part of the canonical form; events recorded before have no
such key (format 1) and keep their hash.
"""

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from uuid import UUID

HASH_FORMAT = 1  # of seals without a Merkle root; seals with one are format 2
SEAL_FORMAT_MERKLE = 2
GENESIS_HASH = bytes(32)  # the "previous hash" of seal number 1
MEMBER_SIZE = 56

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MEMBER = struct.Struct(">16sq32s")

_JSONB_ESCAPES = {
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    ord("\b"): "\\b",
    ord("\f"): "\\f",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    **{code: f"\\u{code:04x}" for code in range(0x20) if code not in (8, 9, 10, 12, 13)},
}

EVENT_KEYS = (
    "event_id",
    "timestamp",
    "session_id",
    "event_type",
    "actor",
    "action",
    "resource",
    "metadata",
)


def _jsonb_order(keys: Iterable[str]) -> list[str]:
    """The order jsonb prints the keys in: shorter first, then bytewise."""
    return sorted(keys, key=lambda key: (len(key.encode()), key.encode()))


_EVENT_KEY_ORDER = _jsonb_order(EVENT_KEYS)
_EVENT_KEY_ORDER_RECORDED = _jsonb_order((*EVENT_KEYS, "recorded_at"))


def jsonb_string(value: str) -> str:
    """``value`` as PostgreSQL's jsonb output quotes it (``escape_json``): only ``"``,
    ``\\`` and control characters are escaped; everything else, ``/`` and non-ASCII
    included, is printed as is."""
    return '"' + value.translate(_JSONB_ESCAPES) + '"'


def timestamp_text(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC: PostgreSQL's
    ``to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')``."""
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def event_canonical_text(
    *,
    event_id: UUID | str,
    timestamp: datetime,
    session_id: str | None,
    event_type: str,
    actor: str,
    action: str,
    resource: str,
    metadata_text: str,
    recorded_at: datetime | None = None,
) -> str:
    """The canonical text of one event; ``metadata_text`` is ``metadata::text`` as
    PostgreSQL printed it (jsonb's own form, embedded verbatim). ``recorded_at`` (when
    the database stamped the insert) is part of it from hash format 2; None for events
    recorded before."""
    values = {
        "event_id": jsonb_string(str(event_id)),
        "timestamp": jsonb_string(timestamp_text(timestamp)),
        "session_id": "null" if session_id is None else jsonb_string(session_id),
        "event_type": jsonb_string(event_type),
        "actor": jsonb_string(actor),
        "action": jsonb_string(action),
        "resource": jsonb_string(resource),
        "metadata": metadata_text,
    }
    order = _EVENT_KEY_ORDER
    if recorded_at is not None:
        values["recorded_at"] = jsonb_string(timestamp_text(recorded_at))
        order = _EVENT_KEY_ORDER_RECORDED
    return "{" + ", ".join(f'"{key}": {values[key]}' for key in order) + "}"


def content_hash(canonical_text: str | bytes) -> bytes:
    data = canonical_text.encode() if isinstance(canonical_text, str) else canonical_text
    return hashlib.sha256(data).digest()


def timestamp_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def micros_timestamp(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


class Member(NamedTuple):
    """One event as a seal lists it."""

    event_id: UUID
    micros: int  # the event's timestamp, microseconds since the epoch, UTC
    content_hash: bytes

    @property
    def timestamp(self) -> datetime:
        return micros_timestamp(self.micros)


def encode_members(members: Iterable[Member]) -> bytes:
    """The members blob, sorted by (timestamp, event id)."""
    ordered = sorted(members, key=lambda member: (member.micros, member.event_id.bytes))
    return b"".join(
        _MEMBER.pack(member.event_id.bytes, member.micros, member.content_hash)
        for member in ordered
    )


def decode_members(blob: bytes) -> Iterator[Member]:
    if len(blob) % MEMBER_SIZE:
        raise ValueError(f"a members blob is a multiple of {MEMBER_SIZE} bytes, not {len(blob)}")
    for raw_id, micros, digest in _MEMBER.iter_unpack(blob):
        yield Member(UUID(bytes=raw_id), micros, digest)


@dataclass(frozen=True)
class SealHeader:
    """What a seal's hash covers. ``members_digest`` is sha256 of the members blob;
    ``merkle_root`` the RFC 6962 root over the members (None for seals made before
    Merkle roots: seal format 1)."""

    number: int
    previous_hash: bytes
    xact_from: int
    xact_to: int
    event_count: int
    first_timestamp: datetime
    last_timestamp: datetime
    sealed_at: datetime
    members_digest: bytes
    merkle_root: bytes | None = None


SEAL_HEADER_FIELDS = tuple(field.name for field in fields(SealHeader))


def seal_header(values: Iterable[object]) -> SealHeader:
    """A header from its field values in declaration order (a database row, say)."""
    return SealHeader(*(bytes(v) if isinstance(v, memoryview) else v for v in values))


def seal_text(header: SealHeader) -> str:
    version = HASH_FORMAT if header.merkle_root is None else SEAL_FORMAT_MERKLE
    merkle = "" if header.merkle_root is None else f"merkle={header.merkle_root.hex()}\n"
    return (
        f"sergas-audit-seal/{version}\n"
        f"number={header.number}\n"
        f"previous={header.previous_hash.hex()}\n"
        f"xact_from={header.xact_from}\n"
        f"xact_to={header.xact_to}\n"
        f"events={header.event_count}\n"
        f"first={timestamp_text(header.first_timestamp)}\n"
        f"last={timestamp_text(header.last_timestamp)}\n"
        f"sealed_at={timestamp_text(header.sealed_at)}\n"
        f"members={header.members_digest.hex()}\n"
        f"{merkle}"
    )


def seal_hash(header: SealHeader) -> bytes:
    return hashlib.sha256(seal_text(header).encode()).digest()


# --- Merkle trees (RFC 6962) ----------------------------------------------------------


def merkle_leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaf_hashes: list[bytes]) -> Iterator[list[bytes]]:
    """The tree's levels from the leaves up. Pairing neighbours and carrying an odd last
    node up unchanged builds exactly RFC 6962's tree (split at the largest power of two)."""
    level = leaf_hashes
    while len(level) > 1:
        yield level
        level = [
            merkle_node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    yield level


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The root over ``leaves`` (the data, not yet hashed); sha256 of nothing if empty."""
    leaf_hashes = [merkle_leaf_hash(leaf) for leaf in leaves]
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    *_, top = _levels(leaf_hashes)
    return top[0]


def merkle_audit_path(leaves: list[bytes], index: int) -> list[bytes]:
    """The hashes that take leaf ``index`` to the root, bottom up (RFC 6962 PATH)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    path = []
    for level in _levels([merkle_leaf_hash(leaf) for leaf in leaves]):
        if len(level) == 1:
            break
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return path


def merkle_root_from_path(leaf: bytes, index: int, tree_size: int, path: list[bytes]) -> bytes:
    """The root that leaf ``index`` of ``tree_size`` and its audit path lead to
    (RFC 9162, 2.1.3.2); compare it with the signed root. ValueError if the path cannot
    belong to such a tree."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf {index} is not in a tree of {tree_size}")
    node, last = index, tree_size - 1
    digest = merkle_leaf_hash(leaf)
    for sibling in path:
        if last == 0:
            raise ValueError("the audit path is longer than the tree is deep")
        if node & 1 or node == last:
            digest = merkle_node_hash(sibling, digest)
            while not node & 1 and node != 0:
                node >>= 1
                last >>= 1
        else:
            digest = merkle_node_hash(digest, sibling)
        node >>= 1
        last >>= 1
    if last != 0:
        raise ValueError("the audit path is shorter than the tree is deep")
    return digest


def member_bytes(member: Member) -> bytes:
    """A member's 56 bytes: a leaf of its seal's Merkle tree."""
    return _MEMBER.pack(member.event_id.bytes, member.micros, member.content_hash)


def members_merkle_root(blob: bytes) -> bytes:
    """The Merkle root of a members blob (already in leaf order)."""
    return merkle_root(blob[i : i + MEMBER_SIZE] for i in range(0, len(blob), MEMBER_SIZE))
