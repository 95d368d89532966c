"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Each test saves screenshots under ``var/test-artifacts/browser/``. The tests skip, saying
why, only where no Chromium can be had (``.ci/run`` installs it when missing).
"""

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.integrity.heads import key_id
from audit.integrity.keys import signing_key
from audit.integrity.proof import proof_problems
from audit.services import audit_event_record
from scheduling import services
from scheduling.models import AccountReview, ScheduleExecution
from sessions.models import AgentSession
from tests.audit.support import seal_everything
from tests.dashboard.conftest import PASSWORD, make_staff
from tests.factories import make_session
from tests.scheduling.factories import make_review

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def chromium_path() -> str | None:
    return (
        os.environ.get("SERGAS_CHROMIUM")
        or shutil.which("chromium")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip("No Chromium here: apt-get install chromium (or set SERGAS_CHROMIUM)")
    # Playwright's sync API keeps an event loop in this thread while it lives; the ORM
    # calls of the tests (and of their database teardown) are still synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _fast_refresh(settings) -> None:
    settings.SERGAS_DASHBOARD = {**settings.SERGAS_DASHBOARD, "REFRESH_SECONDS": 1}


@pytest.fixture
def page_for(browser, live_server):
    """``page_for(username)``: a new browser page logged in through the login form."""
    pages = []

    def open_page(username: str):
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(live_server.url + reverse("dashboard:overview"))
        assert "/login/" in page.url
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/dashboard/$"))
        pages.append(context)
        return page

    yield open_page
    for context in pages:
        context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def confirm(page, control: str) -> None:
    """Click a control, then confirm in its dialog."""
    page.click(f"[data-control={control}]")
    dialog = page.locator("#confirm-dialog")
    dialog.locator("[data-confirm]").wait_for(state="visible")
    dialog.locator("[data-confirm]").click()
    page.wait_for_load_state()


def test_an_operator_pauses_and_resumes_a_running_session(page_for, live_server):
    make_staff("olivia", "Operators")
    session = make_session("running", owner_id="owner_42")
    page = page_for("olivia")
    shot(page, "overview-operator")
    page.click(f"#active-sessions a:text('{session.session_id}')")
    page.wait_for_url(re.compile(re.escape(session.session_id)))

    page.click("[data-control=pause]")
    dialog = page.locator("#confirm-dialog")
    dialog.locator("input[name=reason]").fill("CRM maintenance window")
    shot(page, "session-pause-confirmation")
    dialog.locator("[data-confirm]").click()
    page.locator(".messages .success").wait_for()
    assert "paused" in page.locator(".messages .success").inner_text()
    assert page.locator("[data-session-status]").inner_text() == "paused"
    assert page.locator("[data-control=pause]").count() == 0
    shot(page, "session-paused")

    confirm(page, "resume")
    page.locator(".messages .success").wait_for()
    assert page.locator("[data-session-status]").inner_text() == "running"
    assert AgentSession.objects.get(pk=session.pk).status == "running"
    shot(page, "session-resumed")


def test_an_operator_triggers_a_review_and_sees_its_run_appear_and_finish(
    page_for, celery_worker_thread
):
    make_staff("olivia", "Operators")
    review = make_review(name="Browser-triggered review", account_filter={"count": 4})
    page = page_for("olivia")
    page.click("nav a:text('Schedules')")
    page.click(f"a:text('{review.name}')")
    assert page.locator("#runs").inner_text().startswith("No runs")

    confirm(page, "trigger")
    assert "Run queued" in page.locator(".messages .success").inner_text()
    execution = ScheduleExecution.objects.get(review=review)
    run_row = page.locator(f"[data-run='{execution.pk}']")
    run_row.wait_for()
    # The history refreshes itself: the worker's outcome shows without a reload.
    run_row.locator(".badge:text('Succeeded')").wait_for(timeout=60_000)
    assert "4" in run_row.inner_text()
    shot(page, "schedule-run-succeeded")


def test_staff_follow_a_run_to_its_results_and_an_account_to_its_history(
    page_for, celery_worker_thread, settings
):
    settings.SERGAS_SCHEDULING = {
        **settings.SERGAS_SCHEDULING,
        "SIMULATED_FAILURE_RATE": 0.3,
        "RUNNER_BATCH_SIZE": 3,
    }
    make_staff("victor", "Viewers")
    accounts = [f"acct_browser_{i}" for i in range(1, 9)]
    review = make_review(name="Browser results review", account_filter={"account_ids": accounts})
    execution = services.review_trigger_on_demand(review.pk)
    page = page_for("victor")
    page.click("nav a:text('Schedules')")
    page.click(f"a:text('{review.name}')")
    run_row = page.locator(f"[data-run='{execution.pk}']")
    run_row.locator(".badge:text('Succeeded')").wait_for(timeout=60_000)
    run_row.locator("[data-run-link]").click()
    page.wait_for_url(re.compile(re.escape(reverse("dashboard:run", args=[execution.pk]))))

    results = AccountReview.objects.filter(execution=execution)
    failed = set(results.filter(outcome="failed").values_list("account_id", flat=True))
    assert 0 < len(failed) < len(accounts)  # the simulation fails some accounts, not all
    rows = page.locator("tr[data-account]")
    assert [row.get_attribute("data-account") for row in rows.all()] == accounts
    recommendations = sum(results.values_list("recommendations_count", flat=True))
    assert page.locator("[data-recommendation]").count() == recommendations > 0
    assert page.locator("[data-recommendations]").inner_text() == str(recommendations)
    shot(page, "run-results")

    page.select_option("#results select[name=outcome]", "failed")
    page.click("#results button:text('Show')")
    page.wait_for_url(re.compile(r"outcome=failed"))
    assert {row.get_attribute("data-account") for row in rows.all()} == failed
    assert {row.inner_text() for row in page.locator("tr [data-outcome]").all()} == {"Failed"}
    assert "outcome=failed" in page.locator("[data-export=csv]").get_attribute("href")
    shot(page, "run-results-failed")

    account = sorted(failed)[0]
    page.click(f"tr[data-account='{account}'] a:text('{account}')")
    page.wait_for_url(re.compile(re.escape(reverse("dashboard:account", args=[account]))))
    history = page.locator("tr[data-result-run]")
    assert history.count() == 1
    assert history.first.get_attribute("data-result-run") == str(execution.pk)
    assert history.first.locator("[data-outcome]").inner_text() == "Failed"
    assert review.name in history.first.inner_text()
    session_id = ScheduleExecution.objects.get(pk=execution.pk).session_id
    assert page.locator(f"#sessions a:text('{session_id}')").count() == 1
    shot(page, "account-history")
    history.first.locator("[data-run-link]").click()
    page.wait_for_url(re.compile(re.escape(reverse("dashboard:run", args=[execution.pk]))))


def test_a_viewer_filters_the_audit_explorer(page_for):
    make_staff("victor", "Viewers")
    for i in range(3):
        audit_event_record(
            event_type="schedule", action=f"review_paused_{i}", actor="staff:ana", resource="r:1"
        )
    audit_event_record(event_type="system", action="noise", actor="system", resource="r:2")
    page = page_for("victor")
    page.click("nav a:text('Audit')")
    page.fill("input[name=actor]", "staff:ana")
    page.select_option("select[name=event_type]", "schedule")
    page.click("button:text('Search')")
    page.wait_for_url(re.compile(r"actor=staff%3Aana"))
    rows = page.locator("tr[data-event]")
    assert rows.count() == 3
    assert "noise" not in page.locator("main").inner_text()
    export = page.locator("[data-export=csv]").get_attribute("href")
    assert "actor=staff%3Aana" in export
    shot(page, "audit-filtered")


def test_a_viewer_finds_a_backdated_event_and_downloads_its_proof(page_for, tmp_path):
    make_staff("victor", "Viewers")
    backdated = audit_event_record(
        event_type="auth",
        action="login",
        actor="staff:mallory",
        resource="user:mallory",
        timestamp=timezone.now() - timedelta(days=2),
    )
    audit_event_record(event_type="system", action="timely", actor="system", resource="r")
    seal_everything()
    page = page_for("victor")
    page.click("nav a:text('Audit')")
    assert "OK" in page.locator("[data-witness=test-file]").inner_text()
    page.fill("input[name=recorded_late_seconds]", "60")
    page.click("button:text('Search')")
    page.wait_for_url(re.compile(r"recorded_late_seconds=60"))
    rows = page.locator("tr[data-event]")
    assert rows.count() == 1
    assert "recorded late by 2 d" in rows.first.locator("[data-recorded]").inner_text()
    shot(page, "audit-recorded-late")
    with page.expect_download() as download:
        rows.first.locator("[data-proof]").click()
    assert download.value.suggested_filename == f"audit-proof-{backdated.event_id}.json"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    public = signing_key().public_key()
    assert proof_problems(json.loads(saved.read_text()), {key_id(public): public}) == []


def test_a_viewer_finds_no_controls(page_for):
    make_staff("victor", "Viewers")
    session = make_session("running")
    review = make_review()
    page = page_for("victor")
    assert page.locator("[data-role]").inner_text() == "Viewer"
    for url in (
        reverse("dashboard:session", args=[session.session_id]),
        reverse("dashboard:schedule", args=[review.pk]),
        reverse("dashboard:schedules"),
    ):
        page.goto(page.url.split("/dashboard/")[0] + url)
        assert page.locator("[data-control]").count() == 0
        assert page.locator("text=New schedule").count() == 0
    shot(page, "schedules-viewer")


def test_a_viewer_clicks_a_span_of_the_trace_and_sees_its_attributes(page_for, settings):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from tests.traces.otel import PRICES, agent_spans
    from traces.models import Span
    from traces.services import spans_ingest

    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "MODEL_PRICES": PRICES}
    make_staff("victor", "Viewers")
    session = make_session("running")
    spans = agent_spans(session.session_id, tools=3, failing_tool=True)
    spans_ingest(encode_spans(spans), agent_name="otel-agent", actor="agent:otel-agent")
    failed = Span.objects.get(session_id=session.session_id, status_code=2)
    page = page_for("victor")
    page.goto(page.url + f"sessions/{session.session_id}/")
    rows = page.locator("#trace a.span-row")
    assert rows.count() == 5
    assert "$0.006" in page.locator("[data-model-cost]").inner_text()
    page.locator(f"a[data-span='{failed.trace_id}-{failed.span_id}']").click()
    detail = page.locator(f"[data-span-detail='{failed.trace_id}-{failed.span_id}']")
    detail.wait_for()
    assert "CRM did not answer" in detail.inner_text()
    assert (
        '"gen_ai.tool.name": "crm.get_account"'
        in detail.locator("[data-span-attributes]").inner_text()
    )
    assert "?span=" not in page.url  # htmx swapped the detail in; no reload
    shot(page, "session-trace")
