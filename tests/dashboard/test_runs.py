"""A run's page (summary, progress, results per account, CSV export) and an account's
page (its results across runs, the sessions that reviewed it).

Runs are executed by agents on a work queue: started as a worker starts them, their
batches claimed and completed through ``scheduling.services.work_claim/work_complete``,
the functions behind ``/api/v1/work``.
"""

import csv
import io
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from dashboard.access import NO_ACCESS
from dashboard.exports import RUN_RESULT_COLUMNS
from scheduling import services
from scheduling.models import ScheduleExecution
from scheduling.results import AccountResult
from tests.dashboard.conftest import make_staff
from tests.factories import make_session
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db

QUEUE = "dashboard-reviewers"
AGENT = "crm-agent"
UPSELL = {
    "kind": "upsell",
    "title": "Offer the next tier",
    "detail": "Seats are at their limit.",
    "priority": "high",
    "confidence": 0.8,
}
RENEWAL = {"kind": "renewal_risk", "title": "Call before renewal", "priority": "critical"}


@pytest.fixture(autouse=True)
def _two_accounts_a_batch(settings) -> None:
    settings.SERGAS_SCHEDULING = {**settings.SERGAS_SCHEDULING, "RUNNER_BATCH_SIZE": 2}


def run_page(execution: ScheduleExecution) -> str:
    return reverse("dashboard:run", args=[execution.pk])


def export(execution: ScheduleExecution) -> str:
    return reverse("dashboard:run_results_csv", args=[execution.pk])


def account_page(account_id: str) -> str:
    return reverse("dashboard:account", args=[account_id])


def reviewed(account: str, *recommendations: dict, **fields: object) -> AccountResult:
    fields = {
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": "0.000600",
        "duration_ms": 40,
        **fields,
    }
    return AccountResult(
        account_id=account, outcome="reviewed", recommendations=list(recommendations), **fields
    )


def failed(account: str, error: str = "CRMTimeout: no answer") -> AccountResult:
    return AccountResult(account_id=account, outcome="failed", error=error, duration_ms=5)


def skipped(account: str) -> AccountResult:
    return AccountResult(account_id=account, outcome="skipped")


def queue_run(accounts: list[str], **review: object) -> ScheduleExecution:
    """A started run of a new review whose batches agents take from QUEUE."""
    review.setdefault("name", "Queue review")
    made = make_review(
        executor=f"queue:{QUEUE}", account_filter={"account_ids": accounts}, **review
    )
    execution = services.review_trigger_on_demand(made.pk)
    services.execution_claim(str(execution.pk))
    execution.refresh_from_db()
    return execution


def agent_completes(*results: AccountResult) -> None:
    """An agent claims every batch of QUEUE and completes each with the given results
    (an account not given is reviewed without recommendations)."""
    given = {result.account_id: result for result in results}
    while lease := services.work_claim(QUEUE, holder=f"agent:{AGENT}", actor=f"agent:{AGENT}"):
        services.work_complete(
            lease.batch_id,
            lease.token,
            results=[given.get(account) or reviewed(account) for account in lease.accounts],
            events=[],
            counters={},
            allowed=(),
            agent=AGENT,
            actor=f"agent:{AGENT}",
        )


def finished_run(**review: object) -> ScheduleExecution:
    """A run of four accounts: two reviewed (one with two recommendations), one failed,
    one skipped."""
    execution = queue_run(["acct_a", "acct_b", "acct_c", "acct_d"], **review)
    agent_completes(
        reviewed("acct_a", UPSELL, RENEWAL),
        failed("acct_b"),
        skipped("acct_c"),
        reviewed("acct_d"),
    )
    execution.refresh_from_db()
    return execution


def accounts_listed(response) -> list[str]:
    return [result.account_id for result in response.context["results"].items]


def csv_rows(response) -> list[dict[str, str]]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


class TestRunPage:
    def test_shows_the_run_its_progress_and_what_it_found_for_each_account(self, viewer_client):
        execution = finished_run(name="EMEA renewals")
        assert execution.status == "succeeded"
        response = viewer_client.get(run_page(execution))
        assert response.status_code == 200
        assert accounts_listed(response) == ["acct_a", "acct_b", "acct_c", "acct_d"]
        progress = response.context["progress"]
        assert progress.batches == {"done": 2}
        assert progress.outcomes == {"reviewed": 2, "failed": 1, "skipped": 1}
        assert progress.recommendations == 2
        content = response.content.decode()
        for shown in (
            "EMEA renewals",
            reverse("dashboard:schedule", args=[execution.review_id]),
            reverse("dashboard:session", args=[execution.session_id]),
            f"agents on the work queue <code>{QUEUE}</code>",
            "On Demand",
            reverse("dashboard:account", args=["acct_a"]),
            "Offer the next tier",
            "Seats are at their limit.",
            '<span class="badge p-critical">critical</span>',
            "0.80",
            "CRMTimeout: no answer",
            "$0.0006",
            "100 / 20",
            AGENT,
        ):
            assert shown in content, shown
        assert 'hx-trigger="every' not in content  # a finished run is not polled

    def test_filters_the_results_by_outcome(self, viewer_client):
        execution = finished_run()
        only_failed = viewer_client.get(run_page(execution), {"outcome": "failed"})
        assert accounts_listed(only_failed) == ["acct_b"]
        assert f"{export(execution)}?outcome=failed" in only_failed.content.decode()
        assert accounts_listed(viewer_client.get(run_page(execution), {"outcome": "reviewed"})) == [
            "acct_a",
            "acct_d",
        ]
        bad = viewer_client.get(run_page(execution), {"outcome": "lost"})
        assert bad.context["results"] is None
        assert "Select a valid choice" in bad.content.decode()

    def test_results_are_paged_by_account_id(self, viewer_client, settings):
        settings.SERGAS_DASHBOARD = {**settings.SERGAS_DASHBOARD, "PAGE_SIZE": 2}
        execution = queue_run([f"acct_{i}" for i in range(5)])
        agent_completes()
        seen, cursor = [], None
        while True:
            response = viewer_client.get(run_page(execution), {"cursor": cursor} if cursor else {})
            seen.append(accounts_listed(response))
            cursor = response.context["results"].next_cursor
            if cursor is None:
                break
        assert seen == [["acct_0", "acct_1"], ["acct_2", "acct_3"], ["acct_4"]]
        assert "Next »" in viewer_client.get(run_page(execution)).content.decode()

    def test_a_running_run_has_no_results_yet_and_its_progress_is_live(self, viewer_client):
        execution = queue_run(["acct_a", "acct_b", "acct_c"])
        response = viewer_client.get(run_page(execution))
        assert "No results yet." in response.content.decode()
        assert response.context["progress"].batches == {"pending": 2}
        fragment_url = reverse("dashboard:run_progress", args=[execution.pk])
        assert f'hx-get="{fragment_url}"' in response.content.decode()
        fragment = viewer_client.get(fragment_url)
        assert "HX-Refresh" not in fragment
        assert b"<html" not in fragment.content
        agent_completes()
        fragment = viewer_client.get(fragment_url)
        assert fragment["HX-Refresh"] == "true"  # finished: the page reloads with its results
        assert b"3 reviewed" in fragment.content

    def test_the_page_makes_the_same_queries_for_few_or_many_results(
        self, viewer_client, count_queries
    ):
        few = queue_run(["acct_a"], name="Few")
        agent_completes(reviewed("acct_a", UPSELL))
        many = queue_run([f"acct_{i}" for i in range(8)], name="Many")
        agent_completes(*(reviewed(f"acct_{i}", UPSELL, RENEWAL) for i in range(8)))
        assert count_queries(viewer_client, run_page(few)) == count_queries(
            viewer_client, run_page(many)
        )
        assert count_queries(viewer_client, run_page(many)) <= 8

    def test_an_unknown_run_is_a_404(self, viewer_client):
        unknown = uuid.uuid4()
        for name in ("dashboard:run", "dashboard:run_progress", "dashboard:run_results_csv"):
            assert viewer_client.get(reverse(name, args=[unknown])).status_code == 404


class TestExport:
    def test_one_row_per_recommendation_and_one_for_an_account_without_any(self, viewer_client):
        execution = finished_run()
        response = viewer_client.get(export(execution))
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == (
            f'attachment; filename="run-{execution.pk}-results.csv"'
        )
        rows = csv_rows(response)
        assert list(rows[0]) == RUN_RESULT_COLUMNS
        assert [(row["account_id"], row["outcome"], row["kind"]) for row in rows] == [
            ("acct_a", "reviewed", "upsell"),
            ("acct_a", "reviewed", "renewal_risk"),
            ("acct_b", "failed", ""),
            ("acct_c", "skipped", ""),
            ("acct_d", "reviewed", ""),
        ]
        upsell = rows[0]
        assert (upsell["priority"], upsell["title"], upsell["detail"]) == (
            "high",
            "Offer the next tier",
            "Seats are at their limit.",
        )
        assert upsell["confidence"] == "0.8"
        assert rows[1]["confidence"] == ""
        assert (upsell["input_tokens"], upsell["output_tokens"]) == ("100", "20")
        assert (upsell["cost_usd"], upsell["duration_ms"], upsell["agent"]) == (
            "0.000600",
            "40",
            AGENT,
        )
        assert upsell["recorded_at"].startswith(str(execution.finished_at.year))
        assert rows[2]["error"] == "CRMTimeout: no answer"
        assert rows[2]["title"] == rows[2]["priority"] == ""

    def test_the_outcome_filter_applies_and_every_page_is_read(self, viewer_client, monkeypatch):
        monkeypatch.setattr("dashboard.exports.EXPORT_PAGE_SIZE", 2)  # several pages
        execution = queue_run([f"acct_{i}" for i in range(7)])
        agent_completes(failed("acct_1"), failed("acct_4"), failed("acct_6"))
        rows = csv_rows(viewer_client.get(export(execution), {"outcome": "failed"}))
        assert [row["account_id"] for row in rows] == ["acct_1", "acct_4", "acct_6"]
        assert len(csv_rows(viewer_client.get(export(execution)))) == 7
        bad = viewer_client.get(export(execution), {"outcome": "lost"})
        assert bad.status_code == 400

    def test_text_a_spreadsheet_would_run_as_a_formula_is_defused(self, viewer_client):
        execution = queue_run(["acct_a"])
        formula = {"kind": "upsell", "title": "=HYPERLINK(1)", "detail": "+1"}
        agent_completes(reviewed("acct_a", formula))
        [row] = csv_rows(viewer_client.get(export(execution)))
        assert (row["title"], row["detail"]) == ("'=HYPERLINK(1)", "'+1")

    def test_each_export_is_an_audit_event(self, viewer_client):
        execution = finished_run()
        b"".join(viewer_client.get(export(execution), {"outcome": "failed"}).streaming_content)
        event = AuditEvent.objects.get(action="run_results_export")
        assert (event.event_type, event.actor) == ("system", "staff:victor")
        assert event.resource == "table:schedule_account_review"
        metadata = dict(event.metadata)
        assert metadata.pop("request_id")  # the export's request (kernel.logs)
        assert metadata == {
            "format": "csv",
            "execution_id": str(execution.pk),
            "review_id": execution.review_id,
            "filters": {"outcome": "failed"},
        }

    def test_the_export_makes_the_same_queries_for_few_or_many_results(
        self, viewer_client, count_queries
    ):
        few = queue_run(["acct_a"], name="Few")
        agent_completes()
        many = queue_run([f"acct_{i}" for i in range(8)], name="Many")
        agent_completes(*(reviewed(f"acct_{i}", UPSELL, RENEWAL) for i in range(8)))
        assert count_queries(viewer_client, export(few)) == count_queries(
            viewer_client, export(many)
        )


class TestLinks:
    def test_the_schedules_run_history_links_each_run_to_its_page(self, viewer_client):
        execution = finished_run()
        response = viewer_client.get(reverse("dashboard:schedule", args=[execution.review_id]))
        assert f'href="{run_page(execution)}" data-run-link' in response.content.decode()

    def test_the_session_of_a_run_links_to_the_run(self, viewer_client):
        execution = finished_run()
        response = viewer_client.get(reverse("dashboard:session", args=[execution.session_id]))
        assert f'href="{run_page(execution)}" data-run-link' in response.content.decode()

    def test_a_session_without_a_run_has_no_run_link(self, viewer_client):
        session = make_session("running")
        response = viewer_client.get(reverse("dashboard:session", args=[session.session_id]))
        assert b"data-run-link" not in response.content


class TestAccountPage:
    def test_shows_the_accounts_results_across_runs_newest_first_and_its_sessions(
        self, viewer_client
    ):
        first = queue_run(["acct_x", "acct_y"], name="Weekly")
        agent_completes(failed("acct_x", "CRMTimeout: first run"))
        second = queue_run(["acct_x"], name="Daily")
        agent_completes(reviewed("acct_x", UPSELL))
        response = viewer_client.get(account_page("acct_x"))
        assert response.status_code == 200
        history = response.context["history"].items
        assert [(r.execution_id, r.outcome) for r in history] == [
            (second.pk, "reviewed"),
            (first.pk, "failed"),
        ]
        content = response.content.decode()
        for shown in (
            run_page(first),
            run_page(second),
            reverse("dashboard:schedule", args=[first.review_id]),
            "Weekly",
            "Daily",
            "Offer the next tier",
            "CRMTimeout: first run",
        ):
            assert shown in content, shown
        sessions = [s.session_id for s in response.context["sessions"].items]
        assert sessions == [second.session_id, first.session_id]
        assert reverse("dashboard:session", args=[first.session_id]) in content

    def test_filters_by_outcome_and_pages_newest_first(self, viewer_client, settings):
        settings.SERGAS_DASHBOARD = {**settings.SERGAS_DASHBOARD, "PAGE_SIZE": 1}
        runs = []
        for name, outcome in (("One", "reviewed"), ("Two", "failed"), ("Three", "reviewed")):
            runs.append(queue_run(["acct_x"], name=name))
            agent_completes(failed("acct_x") if outcome == "failed" else reviewed("acct_x"))
        first = viewer_client.get(account_page("acct_x"), {"outcome": "reviewed"})
        assert [r.execution_id for r in first.context["history"].items] == [runs[2].pk]
        second = viewer_client.get(
            account_page("acct_x"),
            {"outcome": "reviewed", "cursor": first.context["history"].next_cursor},
        )
        assert [r.execution_id for r in second.context["history"].items] == [runs[0].pk]
        assert second.context["history"].next_cursor is None
        only_failed = viewer_client.get(account_page("acct_x"), {"outcome": "failed"})
        assert [r.execution_id for r in only_failed.context["history"].items] == [runs[1].pk]

    def test_an_account_no_run_has_seen_has_an_empty_history(self, viewer_client):
        response = viewer_client.get(account_page("acct_nobody"))
        assert response.status_code == 200
        assert "No run has reviewed this account yet." in response.content.decode()
        assert "No session has this account." in response.content.decode()

    def test_the_page_makes_the_same_queries_for_few_or_many_runs(
        self, viewer_client, count_queries
    ):
        queue_run(["acct_x"], name="R0")
        agent_completes(reviewed("acct_x", UPSELL))
        few = count_queries(viewer_client, account_page("acct_x"))
        for i in range(1, 6):
            queue_run(["acct_x"], name=f"R{i}")
            agent_completes(reviewed("acct_x", UPSELL, RENEWAL))
        assert count_queries(viewer_client, account_page("acct_x")) == few
        assert few <= 7

    def test_sessions_are_left_out_for_someone_who_may_not_see_sessions(self, db):
        execution = finished_run()
        reader = make_staff("rita", None)
        reader.user_permissions.add(Permission.objects.get(codename="view_scheduledreview"))
        client = Client()
        client.force_login(reader)
        response = client.get(account_page("acct_a"))
        assert response.status_code == 200
        assert response.context["sessions"] is None
        assert reverse("dashboard:session", args=[execution.session_id]) not in (
            response.content.decode()
        )


class TestAccess:
    def test_staff_without_the_schedules_view_permission_are_refused(self, db):
        execution = finished_run()
        client = Client()
        client.force_login(make_staff("gail", None))
        for url in (
            run_page(execution),
            reverse("dashboard:run_progress", args=[execution.pk]),
            export(execution),
            account_page("acct_a"),
        ):
            response = client.get(url)
            assert response.status_code == 403, url
            assert NO_ACCESS.encode() in response.content
        assert not AuditEvent.objects.filter(action="run_results_export").exists()

    def test_anonymous_visitors_are_sent_to_the_login_page(self, client):
        execution = finished_run()
        for url in (run_page(execution), export(execution), account_page("acct_a")):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login") + "?next=")
