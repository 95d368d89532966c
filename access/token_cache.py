"""Tokens a web process has verified, kept so a request costs no database lookup.

A token that ``agent_token_authenticate`` accepted is kept in a bounded in-process
cache for ``TOKEN_CACHE_SECONDS`` (10 s by default), keyed by its SHA-256 (never the
secret). The cache is only used while Redis answers: ``access.admission`` admits its
requests under tickets of at most ``ADMISSION_SECONDS`` (1 s), and each new ticket
checks that no revocation mark names the token.

Revocation (``agent_token_revoke``) forgets the token in its own process at once and
writes the mark, which outlives every cache entry made before it
(``TOKEN_CACHE_SECONDS`` + a minute). So a revoked token is refused by its own process
at once and by every other within ``ADMISSION_SECONDS``. While Redis is unreachable
the cache is not used at all (every request reads PostgreSQL, as without it); only a
token revoked while Redis was unreachable can still be accepted by another process
once Redis is back, for at most ``TOKEN_CACHE_SECONDS``. Tokens are never edited, only
revoked, so nothing else can make an entry stale.
"""

import functools
import threading
from typing import Any

from cachetools import TTLCache
from django.conf import settings

from access import conf, failures

# A mark outlives the entries made before it by this much.
MARK_MARGIN_SECONDS = 60


class TokenCache:
    def __init__(self, *, ttl: float, maxsize: int) -> None:
        self.ttl = ttl
        # token hash -> (prefix, what the caller keeps: the verified token's principal)
        self._entries: TTLCache[str, tuple[str, Any]] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._lock = threading.Lock()

    def get(self, digest: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(digest)
        return None if entry is None else entry[1]

    def put(self, digest: str, prefix: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[digest] = (prefix, value)

    def forget(self, prefix: str) -> None:
        with self._lock:
            for digest in [d for d, (p, _) in self._entries.items() if p == prefix]:
                self._entries.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@functools.cache
def token_cache() -> TokenCache:
    """The process-wide cache, built from settings on first use."""
    return TokenCache(ttl=conf.token_cache_seconds(), maxsize=conf.token_cache_maxsize())


def revocation_mark_key(prefix: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'sergas')}:token-revoked:{prefix}"


def revocation_publish(prefix: str) -> None:
    """After a revocation commits: forget the token here and mark it for every process."""
    token_cache().forget(prefix)
    seconds = int(conf.token_cache_seconds()) + MARK_MARGIN_SECONDS
    guard = failures.redis_guard()  # the client access.admission reads the mark with
    guard.call(lambda: guard.client.set(revocation_mark_key(prefix), 1, ex=seconds))
