"""Settings of the agents app (API access), read lazily from ``settings.SERGAS_AGENTS``."""

from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "SERGAS_AGENTS", {}).get(name, default)


def throttle_rate() -> str:
    """Requests one token (or staff user) may make, as ``N/period`` (s, min, hour, day)."""
    return str(_get("THROTTLE_RATE", "3000/min"))


def max_body_bytes() -> int:
    """Largest request body the API reads; bigger requests get 413 before being read."""
    return int(_get("MAX_BODY_BYTES", 4 * 1024 * 1024))


def max_json_depth() -> int:
    """Deepest nesting of a JSON body the API parses (422 ``json_too_deep`` beyond)."""
    return int(_get("MAX_JSON_DEPTH", 32))


def idempotency_ttl_hours() -> int:
    """How long a stored ``Idempotency-Key`` response is replayed (then pruned daily)."""
    return int(_get("IDEMPOTENCY_TTL_HOURS", 24))


def token_touch_seconds() -> int:
    """``last_used_at`` is written at most this often per token (not on every request)."""
    return int(_get("TOKEN_TOUCH_SECONDS", 60))


def token_cache_seconds() -> float:
    """How long a web process trusts a token it verified without asking PostgreSQL again.
    Revocation reaches every process at once through a mark in Redis; only one revoked
    while Redis was unreachable may still be accepted by another process this long."""
    return float(_get("TOKEN_CACHE_SECONDS", 10.0))


def admission_seconds() -> float:
    """How long a web process admits requests of a token it verified without asking
    Redis (``access.admission``): the delay before a revocation in another process, or
    an address's failed-authentication limit, reaches it. 0: ask Redis every request."""
    return float(_get("ADMISSION_SECONDS", 1.0))


def token_cache_maxsize() -> int:
    """Verified tokens one web process keeps (least recently used go first)."""
    return int(_get("TOKEN_CACHE_MAXSIZE", 1024))


def auth_failure_limit() -> int:
    """Failed authentications one client address may make per window (API bearer tokens
    and staff logins counted apart); after them it gets 429 until the window ends."""
    return int(_get("AUTH_FAILURE_LIMIT", 20))


def auth_failure_window_seconds() -> int:
    """The fixed window of ``auth_failure_limit``, and of the audit trail's summaries:
    at most one event for the first failure and one summary per address and window."""
    return int(_get("AUTH_FAILURE_WINDOW_SECONDS", 300))


def staff_login_views() -> frozenset[str]:
    """URL names of the staff login views whose POSTs count as login attempts."""
    return frozenset(_get("STAFF_LOGIN_VIEWS", ("login", "admin:login")))


def trusted_proxy_count() -> int:
    """Reverse proxies in front of the web processes (``TRUSTED_PROXY_COUNT``): the client
    address is then read from ``X-Forwarded-For``, never without them."""
    return int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
