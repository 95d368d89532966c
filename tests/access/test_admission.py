"""Requests of verified tokens admitted under tickets: leases of the caller's rate that
never let it exceed its limit, and the failure throttle (access.admission)."""

import pytest
from django.test import Client

from access import admission, failures
from access.admission import lease_size
from access.services import agent_token_create
from access.throttling import RateWindow

pytestmark = pytest.mark.django_db


def _rate(settings, rate: str, **more) -> None:
    settings.SERGAS_AGENTS = {**settings.SERGAS_AGENTS, "THROTTLE_RATE": rate, **more}


def _get(client: Client, secret: str, address: str):
    return client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address)


def _seconds_later(monkeypatch, seconds: float) -> None:
    """Every ticket's clock moves on (ADMISSION_SECONDS is 1 s by default)."""
    now = admission.monotonic()
    monkeypatch.setattr(admission, "monotonic", lambda: now + seconds)


def _counter(prefix: str) -> int:
    return int(failures.redis_guard().client.get(RateWindow.of(f"token:{prefix}").key) or 0)


def test_small_rates_are_leased_one_request_at_a_time(settings):
    assert lease_size(3) == 1
    assert lease_size(3000) == 30
    assert lease_size(10**8) == 100
    settings.SERGAS_AGENTS = {**settings.SERGAS_AGENTS, "ADMISSION_SECONDS": 0}
    assert lease_size(10**8) == 1  # every request asks Redis: the exact count


def test_the_counter_holds_the_requests_served_and_the_lease_outstanding(
    client, settings, monkeypatch
):
    _rate(settings, "1000/hour")  # leases of 10
    issued = agent_token_create(name="steady", scopes=["read"])
    for _ in range(3):
        assert _get(client, issued.secret, "192.0.2.40").status_code == 200
    # The first request verified the token and took a lease; the next two used it.
    assert _counter(issued.token.prefix) == 10
    _seconds_later(monkeypatch, 2)  # the ticket ended with 7 of its lease unused
    assert _get(client, issued.secret, "192.0.2.40").status_code == 200
    assert _counter(issued.token.prefix) == 13  # 3 served, given back 7, a new lease of 10


def test_a_caller_never_exceeds_its_rate_through_several_tickets(client, settings):
    _rate(settings, "200/hour")  # leases of 2
    issued = agent_token_create(name="busy", scopes=["read"])
    addresses = ["192.0.2.50", "192.0.2.51", "192.0.2.52"]  # a ticket each, like processes
    statuses = [_get(client, issued.secret, addresses[i % 3]).status_code for i in range(260)]
    served = statuses.count(200)
    # At most the rate; at worst the other tickets' leases early.
    assert 200 - (len(addresses) - 1) * lease_size(200) <= served <= 200
    assert set(statuses) == {200, 429}


def test_an_address_over_the_failure_limit_is_refused_when_its_ticket_ends(
    client, settings, monkeypatch
):
    settings.SERGAS_AGENTS = {
        **settings.SERGAS_AGENTS,
        "AUTH_FAILURE_LIMIT": 2,
        "AUTH_FAILURE_WINDOW_SECONDS": 300,
        "THROTTLE_RATE": "1000/hour",
    }
    issued = agent_token_create(name="neighbour", scopes=["read"])
    address = "192.0.2.60"
    assert _get(client, issued.secret, address).status_code == 200
    for _ in range(2):
        assert _get(client, "sgs_0123456789ab_" + "x" * 43, address).status_code == 401
    assert _get(client, issued.secret, address).status_code == 200  # the ticket: the bound
    _seconds_later(monkeypatch, 2)
    response = _get(client, issued.secret, address)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
