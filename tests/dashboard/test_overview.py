"""The overview: counts, live active sessions, attention lists and the charts' data."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.selectors import audit_tool_calls_per_hour
from audit.services import audit_event_record
from dashboard.overview import outcome_chart, start_lag_chart, tool_error_chart
from scheduling.models import ExecutionStatus, ScheduleExecution
from scheduling.selectors import executions_start_lag_per_hour
from sessions import services
from sessions.models import AgentSession
from sessions.selectors import (
    sessions_active_progress,
    sessions_count_by_status,
    sessions_finished_per_day,
)
from tests.factories import make_session
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("dashboard:overview")


def _runs_with_lags(lags_ms: list[int], nominal: datetime) -> None:
    review = make_review()
    for i, lag in enumerate(lags_ms):
        ScheduleExecution.objects.create(
            review=review,
            review_name=review.name,
            nominal_time=nominal + timedelta(seconds=i),
            status=ExecutionStatus.SUCCEEDED,
            priority="medium",
            start_lag_ms=lag,
        )


def _tool_call(error: str | None = None, *, at: datetime | None = None) -> None:
    audit_event_record(
        event_type="tool",
        action="post_tool",
        actor="agent:x",
        resource="tool:crm.get_account",
        metadata={"error_type": error} if error else {},
        timestamp=at,
    )


def test_counts_every_status_including_zeros():
    make_session("running")
    make_session("running")
    make_session("failed")
    counts = sessions_count_by_status()
    assert counts["running"] == 2
    assert counts["failed"] == 1
    assert counts["interrupted"] == 0
    assert len(counts) == 7


def test_active_progress_is_read_out_of_the_context():
    session = make_session("running", account_ids=["a", "b", "c", "d"])
    services.session_update_context(
        session.session_id,
        changes={
            "processed_accounts": ["a", "b"],
            "failed_accounts": ["c"],
            "total_batches": 2,
            "current_batch": 1,
        },
    )
    make_session("completed")
    [progress] = sessions_active_progress()
    assert (progress.session_id, progress.account_count) == (session.session_id, 4)
    assert (progress.processed_count, progress.failed_count) == (2, 1)
    assert (progress.current_batch, progress.total_batches, progress.percent) == (1, 2, 75)


def test_finished_sessions_are_counted_per_day_of_their_end_by_outcome():
    make_session("completed")
    make_session("completed")
    old = make_session("failed")
    AgentSession.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=3))
    make_session("running")
    rows = {
        (r.day, r.status): r.count
        for r in sessions_finished_per_day(since=timezone.now() - timedelta(days=14))
    }
    today = timezone.now().astimezone(UTC).date()
    assert rows == {(today, "completed"): 2, (today - timedelta(days=3), "failed"): 1}
    chart = outcome_chart(timezone.now())
    assert chart.labels[-1] == f"{today:%b %d}"
    completed = next(s for s in chart.series if s.name == "completed")
    assert completed.values[-1] == 2
    assert len(chart.bars) == 2


def test_start_lag_per_hour_has_median_p95_and_max():
    nominal = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    _runs_with_lags([100 * i for i in range(1, 21)], nominal)  # 100 ms .. 2000 ms
    [bucket] = executions_start_lag_per_hour(since=nominal - timedelta(minutes=1))
    assert bucket.hour == nominal
    assert bucket.runs == 20
    assert bucket.p50_ms == pytest.approx(1050)
    assert bucket.p95_ms == pytest.approx(1905)
    assert bucket.max_ms == 2000
    chart = start_lag_chart(timezone.now())
    p95 = next(s for s in chart.series if s.name == "p95")
    assert p95.values[-2] == pytest.approx(1.905)
    assert p95.values[-1] is None  # no run due this hour: a gap, not a zero


def test_tool_error_rate_counts_post_tool_events_that_carry_an_error():
    for _ in range(3):
        _tool_call()
    _tool_call("CrmTimeout")
    audit_event_record(event_type="tool", action="pre_tool", actor="agent:x", resource="tool:t")
    [hour] = audit_tool_calls_per_hour(since=timezone.now() - timedelta(hours=1))
    assert (hour.calls, hour.errors, hour.error_rate) == (4, 1, 0.25)
    chart = tool_error_chart(timezone.now())
    assert chart.series[0].values[-1] == 25.0
    assert chart.series[0].notes[-1] == "1 of 4 calls"


def test_the_overview_shows_counts_live_progress_and_what_needs_a_look(viewer_client):
    running = make_session("running")
    failed = make_session("failed")
    review = make_review(name="Morning review")
    ScheduleExecution.objects.create(
        review=review,
        review_name=review.name,
        nominal_time=timezone.now() - timedelta(hours=1),
        status=ExecutionStatus.MISSED,
        priority="medium",
    )
    response = viewer_client.get(OVERVIEW)
    content = response.content.decode()
    assert response.context["overview"].session_counts["running"] == 1
    assert running.session_id in content
    assert 'hx-trigger="every 5s"' in content
    assert failed.session_id in content  # failed sessions
    assert "Morning review" in content  # upcoming and missed
    assert [run.status for run in response.context["overview"].attention_runs] == ["missed"]
    assert content.count("<svg") == 1  # only the outcome chart has data


def test_the_live_fragment_refreshes_only_the_active_sessions(viewer_client):
    make_session("paused")
    fragment = viewer_client.get(reverse("dashboard:active_sessions"))
    assert b"<html" not in fragment.content
    assert b'id="active-sessions"' in fragment.content
    assert b"paused" in fragment.content


def test_empty_states_read_as_sentences(viewer_client):
    content = viewer_client.get(OVERVIEW).content.decode()
    assert "No session is running or paused." in content
    assert "No data in this period yet." in content


def test_the_overview_makes_the_same_queries_for_few_or_many_sessions(viewer_client, count_queries):
    make_session("running")
    few = count_queries(viewer_client, OVERVIEW)
    for status in ("running", "paused", "failed", "interrupted", "completed"):
        make_session(status)
    _runs_with_lags([10, 20, 30], timezone.now() - timedelta(hours=2))
    _tool_call("X")
    assert count_queries(viewer_client, OVERVIEW) == few
    assert few <= 16  # session, user, permissions (2), then one per panel, chart and warning
    fragment = reverse("dashboard:active_sessions")
    assert count_queries(viewer_client, fragment) <= 5  # session, user, permissions, rows


def test_the_overview_aggregates_are_reused_for_a_few_seconds(viewer_client, settings):
    from dashboard import overview

    settings.SERGAS_DASHBOARD = {**settings.SERGAS_DASHBOARD, "OVERVIEW_CACHE_SECONDS": 60}
    overview._overview_cache = None
    try:
        first = viewer_client.get("/dashboard/").context["overview"]
        make_session("running")
        again = viewer_client.get("/dashboard/").context["overview"]
        assert again is first  # within the window: not recomputed
        settings.SERGAS_DASHBOARD = {**settings.SERGAS_DASHBOARD, "OVERVIEW_CACHE_SECONDS": 0}
        fresh = viewer_client.get("/dashboard/").context["overview"]
        assert fresh.session_counts["running"] == first.session_counts["running"] + 1
    finally:
        overview._overview_cache = None


def test_events_in_the_default_audit_partition_are_a_warning_on_the_overview(
    viewer_client, settings
):
    settings.SERGAS_DASHBOARD = {**settings.SERGAS_DASHBOARD, "OVERVIEW_CACHE_SECONDS": 0}
    # Transactional tests elsewhere may have left strays (the trail keeps everything).
    before = viewer_client.get(OVERVIEW).context["overview"].audit_default_rows
    for minute in range(2):  # a month no partition was made for
        audit_event_record(
            event_type="system",
            actor="test",
            action="probe",
            resource="r",
            timestamp=datetime(2045, 1, 1, 0, minute, tzinfo=UTC),
        )
    response = viewer_client.get(OVERVIEW)
    assert response.context["overview"].audit_default_rows == before + 2
    page = response.content.decode()
    assert "data-audit-default-rows" in page
    assert f"{before + 2} audit events in the default partition" in page
