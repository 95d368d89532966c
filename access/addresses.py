"""Where a request comes from: the client address, and the key it is counted under.

``REMOTE_ADDR`` unless ``TRUSTED_PROXY_COUNT`` reverse proxies stand in front: then the
address the outermost trusted proxy saw, read from ``X-Forwarded-For`` (each proxy
appends the address it received from, so the client is the N-th entry from the right;
entries further left are whatever the client wrote). django-axes uses the same function
(``AXES_CLIENT_IP_CALLABLE``), so a lockout and a throttle name the same address.
"""

import functools
import ipaddress

from django.http import HttpRequest

from access import conf

UNKNOWN = "unknown"
# An IPv6 host usually holds a whole /64: counting each of its addresses apart would let
# it rotate through 2**64 of them.
IPV6_PREFIX_LENGTH = 64


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address as text, or None when the request does not say."""
    remote = _valid(request.META.get("REMOTE_ADDR"))
    proxies = conf.trusted_proxy_count()
    if proxies <= 0:
        return remote
    forwarded = [
        entry.strip()
        for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if entry.strip()
    ]
    if not forwarded:
        return remote
    # Fewer entries than proxies: the request skipped the outer ones; the leftmost entry
    # was still written by one of ours.
    return _valid(forwarded[-proxies] if len(forwarded) >= proxies else forwarded[0]) or remote


def address_key(address: str | None) -> str:
    """What failures are counted under: an IPv4 address, the /64 of an IPv6 one."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_PREFIX_LENGTH}", strict=False))
    return str(ip)


@functools.lru_cache(maxsize=1024)  # the same few addresses, parsed on every request
def _valid(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
