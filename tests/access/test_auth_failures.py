"""Floods of failed authentication: throttled per address (429 before any database
work) and audited in bounded rows whose counts add up to every refused request.

The floods use one-second windows so that a few thousand requests span several of them;
``pytest -s`` prints what each flood sent and wrote.
"""

import secrets
import time
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from access import failures
from access.exceptions import AUTHENTICATION_THROTTLED
from access.services import (
    agent_token_create,
    agent_token_revoke,
    auth_failure_summaries_flush,
    auth_failure_summary_record,
)
from access.tasks import flush_auth_failure_summaries
from audit.models import AuditEvent
from tests.drills.report import DrillReport

SUMMARY = "authentication_failures_summarized"


def _limits(settings, *, limit: int, window: int) -> None:
    settings.SERGAS_AGENTS = {
        **settings.SERGAS_AGENTS,
        "AUTH_FAILURE_LIMIT": limit,
        "AUTH_FAILURE_WINDOW_SECONDS": window,
    }


def _made_up_token() -> str:
    return f"sgs_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def _get(client: Client, token: str, address: str):
    return client.get("/api/v1/sessions", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address)


def _metric(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "sergas_auth_failures_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


def _metrics(kind: str) -> dict[str, float]:
    return {outcome: _metric(kind, outcome) for outcome in failures.Outcome}


def _windows_between(started: float, ended: float, window: int) -> int:
    return int(ended // window) - int(started // window) + 1


def _flush_everything() -> int:
    """Flush as if every window had closed (the beat task waits for them to)."""
    return auth_failure_summaries_flush(now=time.time() + 3600)


def _assert_throttled(response, *, window: int) -> None:
    body = response.json()
    assert body["code"] == "throttled"
    assert 1 <= body["retry_after"] <= window
    assert int(response["Retry-After"]) == body["retry_after"]


@pytest.mark.django_db
class TestWrongTokens:
    @pytest.mark.slow
    def test_a_flood_of_made_up_tokens_is_throttled_and_audited_in_bounded_rows(
        self, client, settings, caplog
    ):
        limit, window, sent = 10, 1, 3000
        _limits(settings, limit=limit, window=window)
        addresses = [f"198.51.100.{i}" for i in range(1, 7)]
        report = DrillReport(f"{sent} made-up bearer tokens from {len(addresses)} addresses")
        before = _metrics("api_token")
        statuses: Counter[int] = Counter()
        started = time.time()
        with CaptureQueriesContext(connection) as queries:
            for i in range(sent):
                token = _made_up_token() if i % 10 else "not-a-token"  # malformed ones too
                response = _get(client, token, addresses[i % len(addresses)])
                statuses[response.status_code] += 1
                if response.status_code == 429:
                    _assert_throttled(response, window=window)
        ended = time.time()
        windows = _windows_between(started, ended, window)
        events = AuditEvent.objects.filter(event_type="auth")
        rows_during = events.count()

        # A Redis call slower than its socket timeout (a starved machine) sets Redis
        # aside for a few seconds, and then every failure is an event of its own (by
        # design): say so if the bounds below fail that way.
        stepped_aside = [
            r.getMessage() for r in caplog.records if "Redis unavailable" in r.getMessage()
        ]
        assert set(statuses) == {401, 429}, stepped_aside
        assert statuses[401] <= len(addresses) * windows * limit, stepped_aside
        assert rows_during <= len(addresses) * windows, stepped_aside  # one per address, window
        # At most a token lookup per 401 and an insert per event; none for a 429.
        assert len(queries) <= statuses[401] + rows_during

        written = _flush_everything()
        rows = events.count()
        assert rows <= len(addresses) * windows * 2
        assert written == events.filter(action=SUMMARY).count()
        individual = events.filter(action="authentication_failed").count()
        summaries = [event.metadata for event in events.filter(action=SUMMARY)]
        # Nothing lost: every refused request is an event or counted in exactly one summary.
        assert individual + sum(summary["count"] for summary in summaries) == sent
        assert individual + sum(summary["failed"] for summary in summaries) == statuses[401]
        assert sum(summary["throttled"] for summary in summaries) == statuses[429]
        assert {summary["kind"] for summary in summaries} == {"api_token"}
        assert all(len(summary["token_prefixes"]) <= failures.TRIED_KEPT for summary in summaries)
        assert any(summary["token_prefixes_truncated"] for summary in summaries)
        assert failures.closed_windows(now=time.time() + 3600) == []  # Redis forgot them
        # The metric counts the same requests.
        after = _metrics("api_token")
        assert after["audited"] - before["audited"] == individual
        assert after["aggregated"] - before["aggregated"] == statuses[401] - individual
        assert after["throttled"] - before["throttled"] == statuses[429]

        report.note("windows (1 s each)", windows)
        report.note("answers", dict(sorted(statuses.items())))
        report.note("database queries during the flood", len(queries))
        report.note("audit rows during the flood", rows_during)
        report.note("audit rows after the flush", f"{rows} ({individual} events, {written} sums)")
        report.note("bound (addresses x windows x 2)", len(addresses) * windows * 2)
        report.print()

    def test_a_throttled_request_does_no_database_work(self, client, settings):
        _limits(settings, limit=3, window=300)
        address = "203.0.113.9"
        assert [_get(client, _made_up_token(), address).status_code for _ in range(3)] == [401] * 3
        with CaptureQueriesContext(connection) as queries:
            response = _get(client, _made_up_token(), address)
        assert response.status_code == 429
        assert len(queries) == 0
        assert response.json()["detail"] == AUTHENTICATION_THROTTLED.format(
            limit=3, window=300, retry_after=response.json()["retry_after"]
        )
        _assert_throttled(response, window=300)

    def test_a_valid_token_is_not_throttled_by_failures_from_another_address(
        self, client, settings
    ):
        _limits(settings, limit=3, window=300)
        secret = agent_token_create(name="honest", scopes=["read"]).secret
        for _ in range(5):
            _get(client, _made_up_token(), "203.0.113.66")
        assert _get(client, _made_up_token(), "203.0.113.66").status_code == 429
        assert _get(client, secret, "203.0.113.7").status_code == 200
        # From the throttled address itself, the token is not even looked up until the
        # window ends (docs/security.md).
        assert _get(client, secret, "203.0.113.66").status_code == 429

    def test_an_agent_that_sent_wrong_tokens_is_back_when_the_window_ends(self, client, settings):
        _limits(settings, limit=2, window=1)
        secret = agent_token_create(name="clumsy", scopes=["read"]).secret
        address = "203.0.113.5"
        time.sleep(1 - time.time() % 1)  # start at the beginning of a window
        assert [_get(client, _made_up_token(), address).status_code for _ in range(2)] == [401] * 2
        response = _get(client, secret, address)
        assert response.status_code == 429
        assert int(response["Retry-After"]) == 1
        time.sleep(1 - time.time() % 1 + 0.01)
        assert _get(client, secret, address).status_code == 200

    def test_one_wrong_token_is_one_event_naming_its_window(self, client, settings):
        _limits(settings, limit=20, window=300)
        _get(client, "sgs_0123456789ab_" + "x" * 43, "192.0.2.1")
        assert _flush_everything() == 0  # nothing to summarise
        event = AuditEvent.objects.get(event_type="auth")
        assert event.action == "authentication_failed"
        assert event.metadata["remote_addr"] == "192.0.2.1"
        assert event.metadata["aggregation"] == "first_in_window"
        assert event.metadata["window_end"] > event.metadata["window_start"]

    def test_a_revoked_token_counts_as_a_failure_with_its_code(self, client, settings):
        _limits(settings, limit=20, window=300)
        issued = agent_token_create(name="retired", scopes=["read"])
        agent_token_revoke(issued.token.prefix)
        for _ in range(4):
            assert _get(client, issued.secret, "192.0.2.2").status_code == 401
        _flush_everything()
        summary = AuditEvent.objects.get(action=SUMMARY)
        assert summary.resource == "address:192.0.2.2"
        assert summary.metadata["count"] == 3
        assert summary.metadata["codes"] == {"token_revoked": 3}
        assert summary.metadata["token_prefixes"] == [issued.token.prefix]
        assert summary.metadata["addresses"] == ["192.0.2.2"]

    def test_ipv6_addresses_of_one_64_are_counted_together(self, client, settings):
        _limits(settings, limit=3, window=300)
        statuses = [
            _get(client, _made_up_token(), f"2001:db8:0:1::{i:x}").status_code for i in range(1, 6)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        assert _get(client, _made_up_token(), "2001:db8:0:2::1").status_code == 401
        _flush_everything()
        summary = AuditEvent.objects.get(action=SUMMARY)
        assert summary.resource == "address:2001:db8:0:1::/64"
        assert summary.metadata["addresses"] == [f"2001:db8:0:1::{i}" for i in range(2, 6)]


@pytest.mark.django_db
class TestStaffLogins:
    @pytest.fixture(autouse=True)
    def _throttling_on(self, settings):
        settings.AXES_ENABLED = True  # axes still locks a username out at one address

    def test_a_flood_of_rotating_usernames_is_throttled_and_audited_in_bounded_rows(self, settings):
        limit, window, sent = 10, 300, 300
        _limits(settings, limit=limit, window=window)
        addresses = [f"198.51.100.{i}" for i in range(101, 106)]
        report = DrillReport(f"{sent} staff logins, rotating usernames, {len(addresses)} addresses")
        before = _metrics("staff_login")
        client = Client()
        statuses: Counter[int] = Counter()
        answers: dict[str, list[int]] = {address: [] for address in addresses}
        started = time.time()
        for i in range(sent):
            path = "/login/" if i % 2 else "/admin/login/"
            address = addresses[i % len(addresses)]
            response = client.post(
                path, {"username": f"guess-{i}", "password": "hunter2"}, REMOTE_ADDR=address
            )
            statuses[response.status_code] += 1
            answers[address].append(response.status_code)
            if response.status_code == 429:
                assert 1 <= int(response["Retry-After"]) <= window
        windows = _windows_between(started, time.time(), window)
        events = AuditEvent.objects.filter(event_type="auth")
        rows_during = events.count()

        assert set(statuses) == {200, 429}  # the form again, then throttled
        assert statuses[200] <= len(addresses) * windows * limit
        if windows == 1:  # the flood did not straddle two windows: exactly `limit` tries each
            per_address = sent // len(addresses)
            expected = [200] * limit + [429] * (per_address - limit)
            assert all(statuses == expected for statuses in answers.values())
        assert rows_during <= len(addresses) * windows

        written = _flush_everything()
        rows = events.count()
        assert rows <= len(addresses) * windows * 2
        individual = events.filter(action__in=["login_failed", "login_locked_out"]).count()
        summaries = [event.metadata for event in events.filter(action=SUMMARY)]
        assert len(summaries) == written
        assert individual + sum(summary["count"] for summary in summaries) == sent
        assert sum(summary["throttled"] for summary in summaries) == statuses[429]
        assert all(len(summary["usernames"]) <= failures.TRIED_KEPT for summary in summaries)
        after = _metrics("staff_login")
        assert after["audited"] - before["audited"] == individual
        assert after["throttled"] - before["throttled"] == statuses[429]
        assert sum(after.values()) - sum(before.values()) == sent

        report.note("windows (300 s each)", windows)
        report.note("answers", dict(sorted(statuses.items())))
        report.note("audit rows during the flood", rows_during)
        report.note("audit rows after the flush", f"{rows} ({individual} events, {written} sums)")
        report.note("bound (addresses x windows x 2)", len(addresses) * windows * 2)
        report.print()

    def test_a_throttled_login_is_refused_before_any_database_work(self, settings):
        _limits(settings, limit=2, window=300)
        client = Client()
        for i in range(2):
            client.post("/login/", {"username": f"u{i}", "password": "x"}, REMOTE_ADDR="192.0.2.9")
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                "/login/", {"username": "u3", "password": "x"}, REMOTE_ADDR="192.0.2.9"
            )
        assert response.status_code == 429
        assert len(queries) == 0
        assert "Too many failed authentications" in response.content.decode()
        # Another address logs in as usual.
        assert (
            Client()
            .post("/login/", {"username": "u4", "password": "x"}, REMOTE_ADDR="192.0.2.10")
            .status_code
            == 200
        )


@pytest.mark.django_db
class TestFlushing:
    def test_a_summary_already_written_is_not_written_again(self, client, settings):
        _limits(settings, limit=20, window=300)
        for _ in range(5):
            _get(client, _made_up_token(), "192.0.2.20")
        (window,) = failures.closed_windows(now=time.time() + 3600)
        # A flush that died after writing, before Redis forgot the window:
        assert auth_failure_summary_record(failures.window_read(window))
        assert _flush_everything() == 0
        assert AuditEvent.objects.get(action=SUMMARY).metadata["count"] == 4

    def test_failures_counted_while_a_window_is_flushed_get_a_summary_of_their_own(
        self, client, settings
    ):
        _limits(settings, limit=20, window=300)
        for _ in range(5):
            _get(client, _made_up_token(), "192.0.2.21")
        (window,) = failures.closed_windows(now=time.time() + 3600)
        summary = failures.window_read(window)
        for _ in range(3):  # late, between the read and the forgetting
            _get(client, _made_up_token(), "192.0.2.21")
        assert auth_failure_summary_record(summary)
        failures.window_forget(summary)
        assert _flush_everything() == 1
        counts = sorted(e.metadata["count"] for e in AuditEvent.objects.filter(action=SUMMARY))
        assert counts == [3, 4]
        ids = set(AuditEvent.objects.filter(action=SUMMARY).values_list("metadata__summary_id"))
        assert len(ids) == 2
        assert AuditEvent.objects.filter(action="authentication_failed").count() == 1

    def test_with_redis_down_every_failure_is_an_event_and_nothing_is_throttled(
        self, client, settings, caplog
    ):
        _limits(settings, limit=3, window=300)
        settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
        before = _metric("api_token", "audited")
        statuses = [_get(client, _made_up_token(), "192.0.2.30").status_code for _ in range(10)]
        assert statuses == [401] * 10  # the throttle fails open
        events = AuditEvent.objects.filter(action="authentication_failed")
        assert events.count() == 10  # and no failure goes uncounted
        assert {event.metadata["aggregation"] for event in events} == {"unavailable"}
        assert _metric("api_token", "audited") - before == 10
        assert "Redis unavailable" in caplog.text
        assert auth_failure_summaries_flush() == 0


@pytest.mark.django_db(transaction=True)
def test_the_flush_task_summarises_closed_windows_on_a_real_worker(
    client, settings, celery_worker_thread
):
    _limits(settings, limit=5, window=1)
    time.sleep(1 - time.time() % 1)
    statuses = Counter(_get(client, _made_up_token(), "192.0.2.40").status_code for _ in range(12))
    assert statuses == {401: 5, 429: 7}
    time.sleep(1 + failures.FLUSH_GRACE_SECONDS)  # the window closes, then its grace passes
    flush_auth_failure_summaries.delay()
    deadline = time.monotonic() + 30
    while not AuditEvent.objects.filter(action=SUMMARY).exists():
        assert time.monotonic() < deadline, "the flush task wrote no summary"
        time.sleep(0.05)
    summary = AuditEvent.objects.get(action=SUMMARY)
    assert (summary.metadata["count"], summary.metadata["failed"]) == (11, 4)
    assert summary.metadata["throttled"] == 7
    assert summary.metadata["window_seconds"] == 1


def test_beat_flushes_every_minute_and_the_limits_have_their_documented_defaults(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["agents-flush-auth-failure-summaries"]
    assert entry["task"] == flush_auth_failure_summaries.name
    assert entry["schedule"] == 60.0
    assert settings.SERGAS_AGENTS["AUTH_FAILURE_LIMIT"] == 20
    assert settings.SERGAS_AGENTS["AUTH_FAILURE_WINDOW_SECONDS"] == 300
