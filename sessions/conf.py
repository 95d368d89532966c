"""Settings of the sessions app, read lazily from ``settings.SERGAS_SESSIONS``."""

from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "SERGAS_SESSIONS", {}).get(name, default)


def checkpoints_kept() -> int:
    """How many checkpoints a session keeps; older ones are pruned as new ones arrive."""
    return int(_get("CHECKPOINTS_KEPT", 20))


def heartbeat_timeout_seconds() -> int:
    """A running session silent for longer than this is marked interrupted."""
    return int(_get("HEARTBEAT_TIMEOUT_SECONDS", 300))


def stale_check_seconds() -> float:
    """How often beat looks for running sessions silent past the heartbeat timeout."""
    return float(_get("STALE_CHECK_SECONDS", 60.0))


def cache_local_ttl_seconds() -> float:
    """How long a process trusts its in-process copy: the staleness bound across processes."""
    return float(_get("CACHE_LOCAL_TTL_SECONDS", 1.0))


def cache_local_maxsize() -> int:
    """How many sessions the in-process tier holds (least recently used are evicted)."""
    return int(_get("CACHE_LOCAL_MAXSIZE", 1024))


def cache_redis_ttl_seconds() -> int:
    """Expiry of Redis entries: the staleness bound if Redis missed a write while down."""
    return int(_get("CACHE_REDIS_TTL_SECONDS", 60))


def cache_max_entry_bytes() -> int:
    """Sessions whose serialised state is larger are read from PostgreSQL, not cached."""
    return int(_get("CACHE_MAX_ENTRY_BYTES", 512 * 1024))


def cache_redis_retry_seconds() -> float:
    """After a Redis error the cache skips Redis for this long before trying again."""
    return float(_get("CACHE_REDIS_RETRY_SECONDS", 5.0))


def cache_key_prefix() -> str:
    return str(_get("CACHE_KEY_PREFIX", "sergas"))


def cache_redis_url() -> str:
    return str(_get("CACHE_REDIS_URL", settings.REDIS_URL))


def events_max_batch() -> int:
    """Most tool/task events one ``POST /api/v1/events`` (or one record call) may carry."""
    return int(_get("EVENTS_MAX_BATCH", 1000))


def events_dedupe_window_seconds() -> int:
    """A reported event whose id is already in the trail within this many seconds of the
    batch is a replay and is skipped (an identical id and timestamp is skipped always)."""
    return int(_get("EVENTS_DEDUPE_WINDOW_SECONDS", 24 * 3600))


def events_max_future_seconds() -> int:
    """Clock skew tolerated on reported event timestamps; later ones are refused."""
    return int(_get("EVENTS_MAX_FUTURE_SECONDS", 300))


def events_max_age_days() -> int:
    """Events stamped longer ago than this are refused (the audit trail keeps 7 years)."""
    return int(_get("EVENTS_MAX_AGE_DAYS", 7 * 366))


def owner_paths() -> list[str]:
    """Dotted paths of the ``sessions.owners.SessionOwner`` classes every lifecycle
    transition calls (the project lists the scheduling app's run owner; checked by
    sergas.E005/E006)."""
    return list(_get("OWNERS", []))


def archive_after_days() -> int:
    """Days after it finished that the daily prune archives a session (its checkpoints
    but the last are dropped; its state and audit events stay). 0: never by itself."""
    return int(_get("ARCHIVE_AFTER_DAYS", 30))


def approval_wait_max_seconds() -> float:
    """Longest ``wait_seconds`` a long poll of an approval may ask for."""
    return float(_get("APPROVAL_WAIT_MAX_SECONDS", 60.0))


def approval_wait_fallback_seconds() -> float:
    """While Redis (which carries the wake-ups) is away, a waiting poll looks at the
    approval in PostgreSQL this often instead."""
    return float(_get("APPROVAL_WAIT_FALLBACK_SECONDS", 2.0))


def approval_expiry_check_seconds() -> float:
    """How often beat expires approvals past their deadline with their default decision."""
    return float(_get("APPROVAL_EXPIRY_CHECK_SECONDS", 60.0))
