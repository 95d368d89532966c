"""The read path of ``session_get``: a bounded in-process tier, then Redis, then PostgreSQL.

Writers never put state into the cache; after commit they *invalidate* by writing a
tombstone carrying the new version. Readers fill the tiers from PostgreSQL with the
version they read, and Redis accepts a fill only if it is not older than what it holds
(a Lua compare-and-set), so a slow reader can never overwrite a newer write with the
state it read before that write committed.

Staleness bound, documented in docs/architecture.md:
- the process that wrote sees its write at once (it evicts its own tier on commit);
- any other process sees it within ``CACHE_LOCAL_TTL_SECONDS`` (default 1 s);
- only if Redis was unreachable at the moment of a commit can a Redis entry be older,
  and then for at most ``CACHE_REDIS_TTL_SECONDS`` (default 60 s).

When Redis is down the cache steps aside for ``CACHE_REDIS_RETRY_SECONDS`` and every read
goes to PostgreSQL; nothing fails because Redis is missing.
"""

import functools
import json
import logging
import threading
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from django.db import models
from django.utils.dateparse import parse_datetime

from kernel.redis_guard import RedisGuard
from sessions import conf
from sessions.models import STATE_COLUMNS, AgentSession

logger = logging.getLogger(__name__)

# KEYS[1]: entry; ARGV: version, payload ('' is a tombstone), mode ('write'|'fill'), ttl.
_STORE_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'v')
local version = tonumber(ARGV[1])
if current then
  current = tonumber(current)
  if current > version then return 0 end
  if ARGV[3] == 'fill' and current == version and redis.call('HGET', KEYS[1], 'p') ~= '' then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'v', version, 'p', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

# The row's own JSON fields are left out: the entry carries the composed context and
# metrics instead (what readers see), under those names.
_FIELDS = [f for f in AgentSession._meta.concrete_fields if f.attname not in STATE_COLUMNS]
_FIELD_NAMES = [field.attname for field in _FIELDS]


def encode_session(session: AgentSession) -> bytes:
    data: dict[str, Any] = {"context": session.context, "metrics": session.metrics}
    for name in _FIELD_NAMES:
        value = getattr(session, name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    return json.dumps(data, separators=(",", ":")).encode()


def decode_session(raw: bytes) -> AgentSession:
    data = json.loads(raw)
    values = []
    for field in _FIELDS:
        value = data[field.attname]
        if isinstance(field, models.DateTimeField) and value is not None:
            value = parse_datetime(value)
        values.append(value)
    session = AgentSession.from_db("default", _FIELD_NAMES, values)
    session.state_composed(data["context"], data["metrics"])
    return session


class SessionCache:
    def __init__(
        self,
        *,
        redis_url: str,
        key_prefix: str,
        local_ttl: float,
        local_maxsize: int,
        redis_ttl: int,
        max_entry_bytes: int,
        retry_seconds: float,
    ) -> None:
        self._redis = RedisGuard(redis_url, purpose="Session cache", retry_seconds=retry_seconds)
        self._store = self._redis.client.register_script(_STORE_SCRIPT)
        self._prefix = f"{key_prefix}:session:"
        self._redis_ttl = redis_ttl
        self._max_entry_bytes = max_entry_bytes
        self._local: TTLCache[str, bytes] = TTLCache(maxsize=local_maxsize, ttl=local_ttl)
        self._lock = threading.Lock()

    # --- reads ----------------------------------------------------------------------
    def get(self, session_id: str) -> AgentSession | None:
        """The cached session, or None on a miss (the caller then reads PostgreSQL)."""
        raw = self.get_encoded(session_id)
        return None if raw is None else decode_session(raw)

    def get_encoded(self, session_id: str) -> bytes | None:
        """The cached entry as ``encode_session`` wrote it, or None on a miss."""
        with self._lock:
            raw = self._local.get(session_id)
        if raw is None:
            raw = self._redis_get(session_id)
            if raw is None:
                return None
            with self._lock:
                self._local[session_id] = raw
        return raw

    def fill(self, session: AgentSession) -> None:
        """Offer a row just read from PostgreSQL to both tiers."""
        raw = encode_session(session)
        if len(raw) > self._max_entry_bytes:
            return
        if (
            self._redis_call(
                self._store,
                [self._key(session.pk)],
                [session.version, raw, "fill", self._redis_ttl],
            )
            == 0
        ):
            return  # Redis holds a newer version: our read is already stale.
        with self._lock:
            self._local[session.pk] = raw

    # --- invalidation -----------------------------------------------------------------
    def invalidate(self, session_id: str, version: int) -> None:
        """Record that ``version`` is committed: older copies must not be served."""
        with self._lock:
            self._local.pop(session_id, None)
        self._redis_call(
            self._store, [self._key(session_id)], [version, "", "write", self._redis_ttl]
        )

    def invalidate_many(self, versions: dict[str, int]) -> None:
        """``invalidate`` for many sessions, in one Redis round trip."""
        with self._lock:
            for session_id in versions:
                self._local.pop(session_id, None)
        if versions:
            self._redis_call(self._store_many, versions)

    def _store_many(self, versions: dict[str, int]) -> None:
        pipeline = self._redis.client.pipeline(transaction=False)
        for session_id, version in versions.items():
            self._store(
                keys=[self._key(session_id)],
                args=[version, "", "write", self._redis_ttl],
                client=pipeline,
            )
        pipeline.execute()

    def clear_local(self) -> None:
        with self._lock:
            self._local.clear()

    # --- Redis, stepping aside while it is down ---------------------------------------
    def _key(self, session_id: str) -> str:
        return self._prefix + session_id

    def _redis_get(self, session_id: str) -> bytes | None:
        raw = self._redis_call(self._redis.client.hget, self._key(session_id), "p")
        return raw or None  # b"" is a tombstone

    def _redis_call(self, function: Any, *args: Any) -> Any:
        return self._redis.call(function, *args)


@functools.cache
def session_cache() -> SessionCache:
    """The process-wide cache, built from settings on first use."""
    return SessionCache(
        redis_url=conf.cache_redis_url(),
        key_prefix=conf.cache_key_prefix(),
        local_ttl=conf.cache_local_ttl_seconds(),
        local_maxsize=conf.cache_local_maxsize(),
        redis_ttl=conf.cache_redis_ttl_seconds(),
        max_entry_bytes=conf.cache_max_entry_bytes(),
        retry_seconds=conf.cache_redis_retry_seconds(),
    )
