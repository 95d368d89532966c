"""The canonical form rebuilt in Python is byte for byte what the insert trigger hashed."""

from dataclasses import fields, replace
from datetime import UTC, datetime
from uuid import UUID

import pytest

from audit.integrity.canonical import (
    Member,
    SealHeader,
    decode_members,
    encode_members,
    event_canonical_text,
    jsonb_string,
    seal_hash,
    seal_text,
    timestamp_text,
)
from audit.integrity.rows import stream_events
from audit.services import audit_event_record
from tests.audit.support import record, stored

pytestmark = pytest.mark.django_db

TRICKY_METADATA = [
    {},
    {"version": 1, "from": "running", "to": "paused"},
    {"zz": 1.5, "a": [1, "\x01x\n/é", None], "bb": 10**20, "b": {"y": True, "x": False}},
    {"ü": 0.1, "kkk": -0.0, "big": 1e300, "tiny": 1e-7, "neg": -12.25, "int": -(2**63)},
    {'quote"back\\slash': "tab\there\r\n\b\f\x1f\x7f", "emoji": "🙂", "cjk": "審計"},
    {"nested": [[], {}, [{"deep": [1, [2, [3]]]}]], "": "empty key", "a" * 300: "long"},
]


@pytest.mark.parametrize("metadata", TRICKY_METADATA)
def test_the_python_canonical_form_hashes_to_what_the_trigger_stored(metadata):
    event = audit_event_record(
        event_type="tool",
        action="post_tool",
        actor='agent:"quoted"\ttab',
        resource="session:x/1",
        session_id="session_x_é",
        metadata=metadata,
        timestamp=datetime(2026, 11, 3, 4, 5, 6, 7, tzinfo=UTC),
    )
    (row,) = stream_events("event_id = %s", [event.event_id])
    assert row.recomputed_hash() == row.content_hash == bytes(stored(event, "content_hash"))


def test_an_event_without_session_has_a_null_session_in_its_canonical_form():
    (event,) = record(1)
    (row,) = stream_events("event_id = %s", [event.event_id])
    assert '"session_id": null' in row.canonical_text()
    assert row.recomputed_hash() == row.content_hash


def test_keys_are_ordered_as_jsonb_prints_them_shorter_first_then_bytewise():
    text = event_canonical_text(
        event_id=UUID(int=1),
        timestamp=datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        session_id=None,
        event_type="t",
        actor="a",
        action="x",
        resource="r",
        metadata_text="{}",
    )
    assert text == (
        '{"actor": "a", "action": "x", "event_id": "00000000-0000-0000-0000-000000000001",'
        ' "metadata": {}, "resource": "r", "timestamp": "0999-01-02T03:04:05.000006Z",'
        ' "event_type": "t", "session_id": null}'
    )


def test_strings_are_escaped_as_jsonb_escapes_them():
    assert jsonb_string('a"b\\c/d\n\t\x01é\x7f') == '"a\\"b\\\\c/d\\n\\t\\u0001é\x7f"'


def test_timestamps_are_printed_in_utc_with_microseconds():
    from zoneinfo import ZoneInfo

    moment = datetime(2031, 3, 1, 1, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert timestamp_text(moment) == "2031-03-01T00:00:00.000000Z"


def test_members_round_trip_sorted_by_timestamp_then_event_id():
    members = [
        Member(UUID(int=n), micros, bytes([n]) * 32) for n, micros in [(3, 5), (1, 9), (2, 5)]
    ]
    blob = encode_members(members)
    assert len(blob) == 3 * 56
    assert [m.event_id.int for m in decode_members(blob)] == [2, 3, 1]


def test_a_seal_hash_covers_every_header_field():
    header = SealHeader(
        number=7,
        previous_hash=b"\x01" * 32,
        xact_from=10,
        xact_to=20,
        event_count=3,
        first_timestamp=datetime(2031, 1, 1, tzinfo=UTC),
        last_timestamp=datetime(2031, 1, 2, tzinfo=UTC),
        sealed_at=datetime(2031, 1, 2, 0, 1, tzinfo=UTC),
        members_digest=b"\x02" * 32,
    )
    assert seal_text(header).startswith("sergas-audit-seal/1\nnumber=7\nprevious=0101")
    changed = {
        "number": 8,
        "previous_hash": b"\x03" * 32,
        "xact_from": 11,
        "xact_to": 21,
        "event_count": 4,
        "first_timestamp": datetime(2031, 1, 1, 0, 0, 1, tzinfo=UTC),
        "last_timestamp": datetime(2031, 1, 3, tzinfo=UTC),
        "sealed_at": datetime(2031, 1, 3, tzinfo=UTC),
        "members_digest": b"\x04" * 32,
        "merkle_root": b"\x05" * 32,
    }
    assert {f.name for f in fields(SealHeader)} == set(changed)
    for name, value in changed.items():
        assert seal_hash(replace(header, **{name: value})) != seal_hash(header), name
    # A seal with a Merkle root is format 2; its hash covers the root too.
    rooted = replace(header, merkle_root=b"\x06" * 32)
    assert seal_text(rooted).startswith("sergas-audit-seal/2\n")
    assert seal_text(rooted).endswith(f"merkle={'06' * 32}\n")
    assert seal_hash(replace(rooted, merkle_root=b"\x07" * 32)) != seal_hash(rooted)
