"""GET /api/v1/audit/events: search with filters and cursor pagination."""

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_record
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def _search(api, **params):
    response = api.get("/audit/events", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_each_filter_narrows_the_search(agent_api):
    api = agent_api("admin")
    failed = make_session("failed", actor="agent:x")
    make_session("completed")
    sid = failed.session_id
    assert {e["session_id"] for e in _search(api, session_id=sid)["items"]} == {sid}
    assert {e["actor"] for e in _search(api, actor="agent:x")["items"]} == {"agent:x"}
    assert {e["action"] for e in _search(api, action="fail")["items"]} == {"fail"}
    assert len(_search(api, resource=f"session:{sid}")["items"]) == 3
    assert {e["event_type"] for e in _search(api, event_type="session_lifecycle")["items"]} == {
        "session_lifecycle"
    }
    contains = _search(api, metadata=json.dumps({"to": "failed"}))["items"]
    assert [e["session_id"] for e in contains] == [sid]


def test_the_time_range_defaults_to_the_last_week(agent_api):
    api = agent_api("admin")
    old = timezone.now() - timedelta(days=30)
    audit_event_record(
        event_type="system", action="old", actor="system", resource="r", timestamp=old
    )
    assert _search(api, action="old")["items"] == []
    since = (old - timedelta(minutes=1)).isoformat()
    until = (old + timedelta(minutes=1)).isoformat()
    assert len(_search(api, action="old", since=since, until=until)["items"]) == 1


def test_pages_follow_the_cursor_newest_first_without_gaps(agent_api):
    api = agent_api("admin")
    for _ in range(3):
        make_session("completed")  # three events each
    seen, cursor = [], None
    while True:
        page = _search(api, limit=4, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    stamps = [event["timestamp"] for event in seen]
    everything = {
        str(event_id) for event_id in AuditEvent.objects.values_list("event_id", flat=True)
    }
    assert len(everything) == 10  # three sessions of three events, one token issued
    assert {event["event_id"] for event in seen} == everything
    assert len(seen) == len(everything)
    assert stamps == sorted(stamps, reverse=True)


def test_events_carry_their_recording_time_and_backdated_ones_can_be_found(agent_api):
    api = agent_api("admin")
    week_ago = timezone.now() - timedelta(days=7)
    backdated = audit_event_record(
        event_type="system", action="backdated", actor="x", resource="r", timestamp=week_ago
    )
    audit_event_record(event_type="system", action="timely", actor="x", resource="r")
    since = (week_ago - timedelta(hours=1)).isoformat()
    found = {e["action"]: e for e in _search(api, since=since, actor="x")["items"]}
    stamped = AuditEvent.objects.get(event_id=backdated.event_id).recorded_at
    assert datetime.fromisoformat(found["backdated"]["recorded_at"]) == stamped
    assert found["timely"]["recorded_at"] is not None
    late = _search(api, since=since, recorded_late_seconds=3600)["items"]
    assert [e["action"] for e in late] == ["backdated"]
    assert _search(api, since=since, recorded_late_seconds=8 * 86400)["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metadata": "{oops"}, "metadata"),
        ({"metadata": "[1]"}, "metadata"),
        ({"since": "yesterday"}, "since"),
        ({"recorded_late_seconds": "-1"}, "recorded_late_seconds"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(agent_api, params, field):
    response = agent_api("admin").get("/audit/events", params)
    assert response.status_code == 422
    assert response.json()["field"] == field
