"""Settings of the access app (the API's HTTP edge), read lazily from
``settings.SERGAS_ACCESS``."""

from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "SERGAS_ACCESS", {}).get(name, default)


def throttle_rate() -> str:
    """Requests one token (or staff user) may make, as ``N/period`` (s, min, hour, day)."""
    return str(_get("THROTTLE_RATE", "3000/min"))


def max_body_bytes() -> int:
    """Largest request body the API reads; bigger requests get 413 before being read.
    Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``API_MAX_BODY_BYTES``, 4 MiB) unless set
    lower here: above it Django would refuse the body before the API could answer."""
    return int(_get("MAX_BODY_BYTES", django_max_body_bytes()))


def django_max_body_bytes() -> int | None:
    """Django's own limit on every view (``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


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


def auth_failure_flush_seconds() -> float:
    """How often beat writes the audit summaries of the windows that closed."""
    return float(_get("AUTH_FAILURE_FLUSH_SECONDS", 60.0))


def staff_login_views() -> frozenset[str]:
    """URL names of the staff login views whose POSTs count as login attempts."""
    return frozenset(_get("STAFF_LOGIN_VIEWS", ("login", "admin:login")))


def trusted_proxy_count() -> int:
    """Reverse proxies in front of the web processes (``TRUSTED_PROXY_COUNT``): the client
    address is then read from ``X-Forwarded-For``, never without them."""
    return int(_get("TRUSTED_PROXY_COUNT", 0))


def redis_url() -> str:
    """The Redis of throttle counters, failure windows and revocation marks."""
    return str(settings.REDIS_URL)


def cache_key_prefix() -> str:
    """Prefix of this app's Redis keys: the Django cache's, so that a test run (or a
    second instance on one Redis) has a key space of its own."""
    return str(settings.CACHES["default"].get("KEY_PREFIX", "sergas"))
