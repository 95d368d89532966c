"""The audit explorer: filters over a time range, keyset pages, streamed exports."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_event_record
from dashboard.forms import METADATA_KEY_WITHOUT_VALUE, RANGE_BACKWARDS, metadata_value
from tests.factories import make_session

pytestmark = pytest.mark.django_db

EXPLORER = reverse("dashboard:audit")


def event(action: str, *, days_ago: float = 0, **fields) -> AuditEvent:
    fields.setdefault("event_type", "system")
    fields.setdefault("actor", "system")
    fields.setdefault("resource", "table:audit_event")
    return audit_event_record(
        action=action, timestamp=timezone.now() - timedelta(days=days_ago), **fields
    )


def actions(response) -> list[str]:
    """The actions listed, leaving out the staff login the client's own session made."""
    return [e.action for e in response.context["page"].items if e.event_type != "auth"]


def test_without_a_start_it_searches_the_last_week(viewer_client):
    event("recent", days_ago=1)
    event("old", days_ago=10)
    assert actions(viewer_client.get(EXPLORER)) == ["recent"]
    since = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    assert actions(viewer_client.get(EXPLORER, {"since": since})) == ["recent", "old"]


def test_filters_by_type_actor_resource_session_and_metadata(viewer_client):
    session = make_session("running")
    event("a", actor="staff:ana", resource="review:1", metadata={"to": "failed", "n": 3})
    event("b", event_type="schedule", actor="staff:ana", resource="review:2")
    event("c", metadata={"to": "running"})

    def found(**query: str) -> list[str]:
        return actions(viewer_client.get(EXPLORER, query))

    assert found(actor="staff:ana") == ["b", "a"]
    assert found(event_type="schedule") == ["b"]
    assert found(resource="review:1") == ["a"]
    assert found(metadata_key="to", metadata_value="failed") == ["a"]
    assert found(metadata_key="n", metadata_value="3") == ["a"]  # a JSON number
    assert found(session_id=session.session_id) == ["start", "create"]
    assert found(action="c") == ["c"]


def test_metadata_values_are_read_as_json_when_they_are_json():
    assert metadata_value("3") == 3
    assert metadata_value("true") is True
    assert metadata_value('"3"') == "3"
    assert metadata_value("failed") == "failed"


def test_bad_filters_are_explained(viewer_client):
    response = viewer_client.get(EXPLORER, {"metadata_key": "to"})
    assert response.context["page"] is None
    assert METADATA_KEY_WITHOUT_VALUE in response.content.decode()
    response = viewer_client.get(
        EXPLORER, {"since": "2026-05-02T00:00", "until": "2026-05-01T00:00"}
    )
    assert RANGE_BACKWARDS in response.content.decode()


def test_pages_follow_the_cursor(viewer_client, settings):
    settings.SERGAS_DASHBOARD = {"PAGE_SIZE": 2}
    for i in range(5):
        event(f"e{i}", days_ago=0.1 - i / 100)
    first = viewer_client.get(EXPLORER, {"actor": "system"})
    second = viewer_client.get(
        EXPLORER, {"actor": "system", "cursor": first.context["page"].next_cursor}
    )
    assert actions(first) + actions(second) == ["e4", "e3", "e2", "e1"]


def test_the_explorer_makes_the_same_queries_for_few_or_many_events(viewer_client, count_queries):
    event("one")
    few = count_queries(viewer_client, EXPLORER)
    for i in range(20):
        event(f"more{i}")
    assert count_queries(viewer_client, EXPLORER) == few
    assert few <= 5


def test_the_csv_export_streams_every_matching_row_and_defuses_formulas(viewer_client, monkeypatch):
    monkeypatch.setattr("dashboard.exports.EXPORT_PAGE_SIZE", 3)  # several pages
    for i in range(7):
        event(f"row{i}", actor="agent:x", metadata={"i": i})
    event("formula", actor="=HYPERLINK(1)")
    event("other", actor="agent:y")
    response = viewer_client.get(
        reverse("dashboard:audit_export", args=["csv"]), {"actor": "agent:x"}
    )
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == [f"row{i}" for i in range(6, -1, -1)]
    assert json.loads(rows[0]["metadata"]) == {"i": 6}
    assert set(rows[0]) >= {"event_id", "timestamp", "session_id", "event_type", "resource"}
    formula = viewer_client.get(
        reverse("dashboard:audit_export", args=["csv"]), {"action": "formula"}
    )
    text = b"".join(formula.streaming_content).decode()
    assert "'=HYPERLINK(1)" in text


def test_the_jsonl_export_is_the_audit_apps_format_and_is_itself_audited(viewer_client):
    event("x1", actor="agent:x")
    event("x2", actor="agent:x")
    response = viewer_client.get(
        reverse("dashboard:audit_export", args=["jsonl"]), {"actor": "agent:x"}
    )
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["action"] for line in lines] == ["x2", "x1"]
    export = AuditEvent.objects.get(action="audit_export")
    assert export.actor == "staff:victor"
    assert export.metadata["format"] == "jsonl"
    assert export.metadata["filters"]["actor"] == "agent:x"


def test_unknown_export_formats_are_404(viewer_client):
    assert viewer_client.get(reverse("dashboard:audit_export", args=["xml"])).status_code == 404
