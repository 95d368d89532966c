"""POST /api/v1/events: batches of tool and task events, safe to retry."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from tests.factories import make_session
from tests.scrape import scrape, value

pytestmark = pytest.mark.django_db(transaction=True)


def _batch(session_id, *, tools=2, at=None):
    """pre_tool/post_tool pairs plus one failed task, as an agent SDK would send them."""
    at = at or timezone.now()
    events = []
    for number in range(tools):
        pre_id = str(uuid.uuid4())
        events += [
            {
                "event_id": pre_id,
                "hook": "pre_tool",
                "name": "crm.get_account",
                "timestamp": (at + timedelta(milliseconds=10 * number)).isoformat(),
                "session_id": session_id,
                "input_bytes": 64,
                "metadata": {"account_id": f"acct_{number}"},
            },
            {
                "event_id": str(uuid.uuid4()),
                "hook": "post_tool",
                "name": "crm.get_account",
                "timestamp": (at + timedelta(milliseconds=10 * number + 5)).isoformat(),
                "session_id": session_id,
                "invocation_id": pre_id,
                "duration_ms": 5.0,
                "output_bytes": 2048,
            },
        ]
    events.append(
        {
            "event_id": str(uuid.uuid4()),
            "hook": "post_task",
            "name": "account_review",
            "timestamp": at.isoformat(),
            "session_id": session_id,
            "duration_ms": 1500,
            "error": {"type": "QuotaExceeded", "message": "LLM quota"},
        }
    )
    return {"events": events}


TOOL = {"tool_name": "crm.get_account", "agent_name": "sdk-agent"}


def test_a_batch_becomes_audit_events_of_the_agent_and_feeds_the_metrics(agent_api):
    before = scrape()
    session = make_session("running")
    response = agent_api(name="sdk-agent").post("/events", _batch(session.session_id))
    assert response.status_code == 200
    assert response.json() == {
        "received": 5,
        "recorded": 5,
        "duplicates": 0,
        "duplicate_event_ids": [],
    }
    events = AuditEvent.objects.filter(session_id=session.session_id, actor="agent:sdk-agent")
    assert events.filter(event_type="tool").count() == 4
    task = events.get(event_type="task")
    assert (task.action, task.resource) == ("post_task", "task:account_review")
    assert task.metadata["error_type"] == "QuotaExceeded"
    assert task.metadata["duration_ms"] == 1500
    assert events.filter(metadata__contains={"account_id": "acct_1"}).count() == 1
    after = scrape()
    calls = "orchestrator_tool_invocations_total"
    assert value(after, calls, **TOOL) - value(before, calls, **TOOL) == 2
    task_labels = {"task_type": "account_review", "agent_name": "sdk-agent"}
    count = "orchestrator_task_duration_seconds_count"
    assert value(after, count, **task_labels) - value(before, count, **task_labels) == 1


def test_a_replayed_batch_adds_nothing_to_the_trail_or_the_metrics(agent_api):
    api = agent_api(name="sdk-agent")
    session = make_session("running")
    batch = _batch(session.session_id)
    api.post("/events", batch)
    rows, before = AuditEvent.objects.count(), scrape()
    replay = api.post("/events", batch).json()
    assert (replay["recorded"], replay["duplicates"]) == (0, 5)
    assert sorted(replay["duplicate_event_ids"]) == sorted(e["event_id"] for e in batch["events"])
    assert AuditEvent.objects.count() == rows
    calls = "orchestrator_tool_invocations_total"
    assert value(scrape(), calls, **TOOL) == value(before, calls, **TOOL)


def test_a_replay_restamped_by_the_client_is_still_recognised(agent_api):
    api = agent_api()
    session = make_session("running")
    batch = _batch(session.session_id)
    api.post("/events", batch)
    later = (timezone.now() + timedelta(seconds=30)).isoformat()
    restamped = {"events": [{**event, "timestamp": later} for event in batch["events"]]}
    assert api.post("/events", restamped).json()["recorded"] == 0


def test_concurrent_replays_of_one_batch_store_each_event_once(agent_api, run_concurrently):
    api = agent_api()
    session = make_session("running")
    batch = _batch(session.session_id, tools=20)
    results = run_concurrently([lambda: api.post("/events", batch).json() for _ in range(4)])
    assert sum(result["recorded"] for result in results) == 41
    assert AuditEvent.objects.filter(event_type__in=["tool", "task"]).count() == 41


def test_a_batch_partly_seen_before_records_only_the_new_events(agent_api):
    api = agent_api()
    session = make_session("running")
    first = _batch(session.session_id)
    api.post("/events", first)
    mixed = {"events": first["events"][:2] + _batch(session.session_id)["events"]}
    body = api.post("/events", mixed).json()
    assert (body["recorded"], body["duplicates"]) == (5, 2)


def test_an_event_id_repeated_inside_a_batch_is_recorded_once(agent_api):
    session = make_session("running")
    event = _batch(session.session_id)["events"][0]
    body = agent_api().post("/events", {"events": [event, event]}).json()
    assert (body["recorded"], body["duplicates"]) == (1, 1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration_ms": None}, "events.1.duration_ms"),
        ({"timestamp": "2026-01-01T10:00:00"}, "events.1.timestamp"),
        ({"hook": "mid_tool"}, "events.1.hook"),
        ({"name": "has space"}, "events.1.name"),
        ({"event_id": "42"}, "events.1.event_id"),
    ],
)
def test_an_invalid_event_is_422_naming_it_and_nothing_is_written(agent_api, change, field):
    session = make_session("running")
    batch = _batch(session.session_id, tools=1)
    batch["events"][1] = {**batch["events"][1], **change}
    response = agent_api().post("/events", batch)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert AuditEvent.objects.filter(event_type="tool").count() == 0


def test_an_event_of_an_unknown_session_is_422(agent_api):
    batch = _batch(make_session("running").session_id, tools=1)
    batch["events"][2]["session_id"] = "session_nope"
    response = agent_api().post("/events", batch)
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_session"
    assert response.json()["field"] == "events.2.session_id"
    assert AuditEvent.objects.filter(event_type__in=["tool", "task"]).count() == 0


def test_an_event_stamped_in_the_future_is_422(agent_api):
    session = make_session("running")
    batch = _batch(session.session_id, tools=1, at=timezone.now() + timedelta(hours=1))
    response = agent_api().post("/events", batch)
    assert response.status_code == 422
    assert response.json()["code"] == "event_in_future"


@pytest.mark.parametrize(
    ("stamp", "code"),
    [
        ("0001-01-01T00:00:00+05:00", "event_too_old"),
        ("9999-12-31T23:00:00-05:00", "event_in_future"),
    ],
)
def test_a_stamp_whose_offset_leaves_the_calendar_is_judged_as_any_time_that_far_out(
    agent_api, stamp, code
):
    batch = _batch(make_session("running").session_id, tools=1)
    batch["events"][1]["timestamp"] = stamp
    response = agent_api().post("/events", batch)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert response.json()["field"] == "events.1.timestamp"


def test_a_batch_over_the_event_limit_is_413_with_the_limit(agent_api, settings):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "EVENTS_MAX_BATCH": 4}
    batch = _batch(make_session("running").session_id, tools=2)
    response = agent_api().post("/events", batch)
    assert response.status_code == 413
    assert response.json()["limit"] == 4
    assert response.json()["unit"] == "events"


def test_events_need_the_write_scope(agent_api):
    batch = _batch(make_session("running").session_id, tools=1)
    assert agent_api("read").post("/events", batch).status_code == 403


def test_events_without_a_session_are_accepted(agent_api):
    batch = _batch(None, tools=1)
    assert agent_api().post("/events", batch).json()["recorded"] == 3
