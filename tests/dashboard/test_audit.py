"""The audit explorer: filters over a time range, keyset pages, streamed exports,
recording times, inclusion proofs and the witnesses' state."""

import csv
import io
import json
import re
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.exceptions import PROOF_NOT_SEALED, PROOF_UNAVAILABLE
from audit.integrity.heads import key_id
from audit.integrity.keys import signing_key
from audit.integrity.proof import proof_problems
from audit.models import AuditEvent
from audit.selectors import audit_seal_head
from audit.services import audit_event_record, audit_heads_publish
from dashboard.access import NO_ACCESS
from dashboard.forms import METADATA_KEY_WITHOUT_VALUE, RANGE_BACKWARDS, metadata_value
from tests.audit.support import seal_everything
from tests.dashboard.conftest import make_staff
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


def row(response, attribute: str, key: object) -> str:
    """The HTML of the table row marked ``attribute="key"``."""
    found = re.search(
        rf'<tr {attribute}="{key}">(.*?)</tr>', response.content.decode(), flags=re.DOTALL
    )
    assert found, f"no row {attribute}={key}"
    return found.group(1)


def recorded_at(event: AuditEvent) -> datetime:
    """The recording time the database stamped (the service's instance does not carry it)."""
    return AuditEvent.objects.get(event_id=event.event_id).recorded_at


def proof_url(event_id: object) -> str:
    return reverse("dashboard:audit_event_proof", args=[event_id])


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
    assert few <= 7  # session and user, the page, the chain head and the witnesses


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


# --- recording times -------------------------------------------------------------------


def test_each_event_shows_when_it_was_recorded_and_backdated_ones_are_marked(viewer_client):
    # The database stamps recorded_at = now, so an event claiming last week is late.
    backdated = event("backdated", days_ago=7 + 0.5 / 24)  # half an hour more: no clock edge
    timely = event("timely")
    since = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = viewer_client.get(EXPLORER, {"since": since})
    late_row = row(response, "data-event", backdated.event_id)
    assert f"{recorded_at(backdated):%Y-%m-%d %H:%M:%S}" in late_row
    assert f"{backdated.timestamp:%Y-%m-%d %H:%M:%S}" in late_row
    assert "recorded late by 7 d 0 h" in late_row
    timely_row = row(response, "data-event", timely.event_id)
    assert f"{recorded_at(timely):%Y-%m-%d %H:%M:%S}" in timely_row
    assert "data-recorded-late" not in timely_row


def test_the_recorded_late_filter_keeps_only_backdated_events(viewer_client):
    event("backdated", days_ago=3)
    event("timely")
    since = (timezone.now() - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M")
    found = viewer_client.get(EXPLORER, {"since": since, "recorded_late_seconds": "60"})
    assert actions(found) == ["backdated"]
    assert actions(viewer_client.get(EXPLORER, {"since": since})) == ["timely", "backdated"]
    refused = viewer_client.get(EXPLORER, {"recorded_late_seconds": "-1"})
    assert refused.context["page"] is None
    assert refused.context["form"].errors["recorded_late_seconds"]
    export = reverse("dashboard:audit_export", args=["csv"])
    assert viewer_client.get(export, {"recorded_late_seconds": "-1"}).status_code == 400


def test_both_exports_carry_the_recording_time(viewer_client):
    backdated = event("backdated", days_ago=2, actor="agent:x")
    query = {"actor": "agent:x", "recorded_late_seconds": "60"}
    response = viewer_client.get(reverse("dashboard:audit_export", args=["csv"]), query)
    [csv_row] = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert datetime.fromisoformat(csv_row["recorded_at"]) == recorded_at(backdated)
    response = viewer_client.get(reverse("dashboard:audit_export", args=["jsonl"]), query)
    [line] = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert datetime.fromisoformat(line["recorded_at"]) == recorded_at(backdated)
    export = AuditEvent.objects.filter(action="audit_export").first()
    assert export.metadata["filters"]["recorded_late_seconds"] == 60


# --- inclusion proofs --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # sealing passes only committed transactions
def test_each_event_offers_its_inclusion_proof_which_checks_out(viewer_client):
    target = event("sealed")
    seal_everything()
    assert proof_url(target.event_id) in row(
        viewer_client.get(EXPLORER), "data-event", target.event_id
    )
    response = viewer_client.get(proof_url(target.event_id))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-proof-{target.event_id}.json"'
    )
    proof = json.loads(response.content)
    assert proof["event"]["event_id"] == str(target.event_id)
    public = signing_key().public_key()
    assert proof_problems(proof, {key_id(public): public}) == []


def test_an_event_not_sealed_yet_has_no_proof_and_the_page_says_why(viewer_client):
    target = event("fresh")
    response = viewer_client.get(proof_url(target.event_id))
    assert response.status_code == 409
    reason = PROOF_UNAVAILABLE.format(event_id=target.event_id, reason=PROOF_NOT_SEALED)
    assert reason in response.content.decode()
    assert "Content-Disposition" not in response


def test_an_unknown_events_proof_is_404_and_staff_without_audit_access_get_none(viewer_client):
    missing = viewer_client.get(proof_url("00000000-0000-4000-8000-000000000000"))
    assert missing.status_code == 404
    target = event("secret")
    outsider = Client()
    outsider.force_login(make_staff("gail", None))
    refused = outsider.get(proof_url(target.event_id))
    assert refused.status_code == 403
    assert NO_ACCESS.encode() in refused.content


# --- witnesses -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_explorer_shows_the_chain_head_and_how_far_each_witness_holds_it(
    viewer_client, settings, tmp_path
):
    event("sealed")
    seal_everything()
    head = audit_seal_head()
    page = viewer_client.get(EXPLORER)
    chain = re.search(r"<small data-chain-head>(.*?)</small>", page.content.decode()).group(1)
    assert chain.startswith(f"head: seal #{head.number}, sealed ")
    assert f"{head.sealed_at:%Y-%m-%d %H:%M:%S}" in chain
    witness = row(page, "data-witness", "test-file")
    assert f"through seal #{head.number}" in witness
    assert re.search(r"data-witness-state>OK<", witness)

    # The witness's file becomes a directory: publishing fails, and the page says so.
    settings.AUDIT_WITNESSES = [
        {
            "NAME": "test-file",
            "BACKEND": "audit.integrity.witnesses.FileWitness",
            "OPTIONS": {"path": tmp_path},
        }
    ]
    audit_heads_publish()
    witness = row(viewer_client.get(EXPLORER), "data-witness", "test-file")
    assert re.search(r"data-witness-state>failing<", witness)
    assert "1 attempt in a row" in witness
    assert str(tmp_path) in witness  # the last error names the path
    assert f"through seal #{head.number}" in witness
