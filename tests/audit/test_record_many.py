"""audit_events_record_many: the bulk path that recognises replayed event ids."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_events_record_many

pytestmark = pytest.mark.django_db

WINDOW = timedelta(hours=24)


def _event(event_id=None, at=None, **fields):
    return {
        "event_id": event_id or uuid.uuid4(),
        "timestamp": at or timezone.now(),
        "event_type": "tool",
        "action": "post_tool",
        "actor": "agent:a",
        "resource": "tool:t",
        "metadata": {"duration_ms": 1.5, **fields},
    }


def test_new_events_are_inserted_and_returned_with_every_column():
    events = [_event(n=n) for n in range(3)]
    inserted = audit_events_record_many(events, dedupe_window=WINDOW)
    assert inserted == events
    stored = AuditEvent.objects.get(event_id=events[1]["event_id"])
    assert (stored.actor, stored.resource, stored.metadata, stored.session_id) == (
        "agent:a",
        "tool:t",
        {"duration_ms": 1.5, "n": 1},
        None,  # a field left out takes its model default
    )
    assert stored.timestamp == events[1]["timestamp"]  # to the microsecond


def test_an_event_id_already_in_the_trail_is_skipped_even_with_another_timestamp():
    first = _event()
    audit_events_record_many([first], dedupe_window=WINDOW)
    restamped = _event(first["event_id"], first["timestamp"] + timedelta(hours=2))
    exact = _event(first["event_id"], first["timestamp"])
    assert audit_events_record_many([restamped], dedupe_window=WINDOW) == []
    assert audit_events_record_many([exact], dedupe_window=WINDOW) == []
    assert AuditEvent.objects.filter(event_id=first["event_id"]).count() == 1


def test_an_identical_event_is_skipped_however_old():
    old = _event(at=timezone.now() - timedelta(days=200))
    audit_events_record_many([old], dedupe_window=WINDOW)
    assert (
        audit_events_record_many([_event(old["event_id"], old["timestamp"])], dedupe_window=WINDOW)
        == []
    )


def test_the_first_of_two_events_sharing_an_id_in_one_batch_wins():
    event_id = uuid.uuid4()
    first, second = _event(event_id, which="first"), _event(event_id, which="second")
    assert audit_events_record_many([first, second], dedupe_window=WINDOW) == [first]
    assert AuditEvent.objects.get(event_id=event_id).metadata["which"] == "first"


def test_an_empty_batch_writes_nothing():
    assert audit_events_record_many([], dedupe_window=WINDOW) == []


def test_a_field_the_model_lacks_is_a_programming_error():
    with pytest.raises(TypeError, match="no field"):
        audit_events_record_many([{**_event(), "colour": "blue"}], dedupe_window=WINDOW)
