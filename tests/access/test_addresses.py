"""The client address: REMOTE_ADDR, or X-Forwarded-For behind trusted proxies."""

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory

from access.addresses import address_key, client_address
from audit.models import AuditEvent


def _request(remote: str = "10.0.0.1", forwarded: str | None = None):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_address(_request(forwarded="203.0.113.1")) == "10.0.0.1"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "203.0.113.1", "203.0.113.1"),
        (1, "6.6.6.6, 203.0.113.1", "203.0.113.1"),  # the client wrote the first entry
        (2, "6.6.6.6, 203.0.113.1, 10.0.0.2", "203.0.113.1"),
        (2, "203.0.113.1", "203.0.113.1"),  # fewer entries than proxies
        (1, "not an address", "10.0.0.1"),
        (1, "", "10.0.0.1"),
    ],
)
def test_behind_trusted_proxies_the_address_the_outermost_one_saw(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_address(_request(forwarded=forwarded)) == expected


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "unknown"),
        ("garbage", "unknown"),
    ],
)
def test_failures_are_counted_per_ipv4_address_and_per_ipv6_64(address, key):
    assert address_key(address) == key


@pytest.mark.django_db
def test_login_lockouts_and_the_audit_trail_name_the_forwarded_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_ENABLED = True
    Client().post(
        "/admin/login/",
        {"username": "nobody", "password": "x"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.50",
    )
    assert AuditEvent.objects.get(action="login_failed").metadata["remote_addr"] == ("203.0.113.50")
    assert AccessAttempt.objects.get().ip_address == "203.0.113.50"
