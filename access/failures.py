"""Failed authentications per client address and fixed window, counted in Redis.

Two kinds are counted apart: wrong or revoked API bearer tokens (``api_token``) and
failed staff logins (``staff_login``). Per kind, address and window of
``AUTH_FAILURE_WINDOW_SECONDS``:

- the first failure is audited on its own (the caller writes its event);
- later failures are only counted here (``aggregated``);
- once ``AUTH_FAILURE_LIMIT`` failures were counted, every further attempt is refused
  with 429 before any database work, and counted here too (``throttled``);
- after the window closes, ``access.services.auth_failure_summaries_flush`` (beat) turns
  what was counted into one summary event and forgets it.

Each step is one Lua script, so concurrent web processes count exactly. Windows with
something to summarise are listed in a sorted set scored by their end. Reading a window
and forgetting it are separate steps: forgetting checks that nothing was flushed or
counted meanwhile, and what arrived late is left for the next flush (its summary
carries a distinct ``summary_id``, which makes writing a summary idempotent).

If Redis is unreachable the throttle lets requests through and every failure is audited
on its own (``RedisGuard`` logs a warning): nothing is lost, the trail grows by one
event per failure until Redis is back.
"""

import functools
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings

from access import conf
from access.addresses import address_key
from access.exceptions import AuthenticationThrottled
from access.metrics import observe_auth_failure
from kernel.redis_guard import RedisGuard

logger = logging.getLogger(__name__)

# How many distinct token prefixes (or usernames) and addresses one summary lists.
TRIED_KEPT = 20
# A window with something to summarise is kept this long after it ends, for the flush.
KEPT_SECONDS = 24 * 3600
# A closed window is flushed this long after its end, so that a failure counted a moment
# late (another host's clock) is still in it; one later than that gets a summary of its own.
FLUSH_GRACE_SECONDS = 2.0


class FailureKind(StrEnum):
    API_TOKEN = "api_token"
    STAFF_LOGIN = "staff_login"


class Outcome(StrEnum):
    AUDITED = "audited"
    AGGREGATED = "aggregated"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class Window:
    """One kind, one address key, one fixed window."""

    kind: str
    key: str
    seconds: int
    index: int

    @classmethod
    def at(cls, kind: str, key: str, now: float) -> "Window":
        seconds = conf.auth_failure_window_seconds()
        return cls(kind=kind, key=key, seconds=seconds, index=int(now // seconds))

    @classmethod
    def from_member(cls, member: str) -> "Window":
        kind, seconds, index, key = member.split("|", 3)
        return cls(kind=kind, key=key, seconds=int(seconds), index=int(index))

    @property
    def start(self) -> int:
        return self.index * self.seconds

    @property
    def end(self) -> int:
        return self.start + self.seconds

    @property
    def member(self) -> str:
        return f"{self.kind}|{self.seconds}|{self.index}|{self.key}"

    def keys(self) -> list[str]:
        """The window's hash, its two sets, and the index of windows to flush."""
        counts = f"{_prefix()}:authfail:{self.member}"
        return [counts, f"{counts}:tried", f"{counts}:addresses", _pending_key()]


@dataclass(frozen=True)
class Counted:
    """How one failure was counted; ``window`` is None when Redis was unreachable."""

    outcome: Outcome
    window: Window | None


@dataclass(frozen=True)
class WindowSummary:
    """What a window holds that no event records yet: the requests counted since its
    last summary (``counts``), the token prefixes or usernames and addresses tried."""

    window: Window
    summary_id: str
    counts: dict[str, int]
    tried: list[str]
    tried_truncated: bool
    addresses: list[str]
    addresses_truncated: bool
    snapshot_before: str
    snapshot_after: str
    total: int

    @property
    def aggregated(self) -> int:
        return self.counts.get("aggregated", 0)

    @property
    def throttled(self) -> int:
        return self.counts.get("throttled", 0)

    @property
    def count(self) -> int:
        return self.aggregated + self.throttled

    @property
    def codes(self) -> dict[str, int]:
        return {
            name.removeprefix("code:"): value
            for name, value in sorted(self.counts.items())
            if name.startswith("code:") and value
        }


# KEYS: counts, tried, addresses, pending. Shared by the two counting scripts: remember
# a value in a bounded set (a flag says when one did not fit), and keep the window.
_REMEMBER = """
local function remember(set, value, cap, flag)
  if value == '' or redis.call('SISMEMBER', set, value) == 1 then return end
  if redis.call('SCARD', set) < cap then
    redis.call('SADD', set, value)
  else
    redis.call('HSET', KEYS[1], flag, 1)
  end
end
local function keep(kept, member, window_end)
  redis.call('EXPIRE', KEYS[1], kept)
  redis.call('EXPIRE', KEYS[2], kept)
  redis.call('EXPIRE', KEYS[3], kept)
  redis.call('ZADD', KEYS[4], 'NX', window_end, member)
end
"""

# KEYS 1-4 and ARGV 1-7: limit, kept, cap, tried, address, member, window end. True:
# refuse (counted). Also part of the API's admission script (access.admission).
THROTTLE_LUA = (
    _REMEMBER
    + """
local function throttled()
  local failed = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
  if failed < tonumber(ARGV[1]) then return false end
  redis.call('HINCRBY', KEYS[1], 'throttled', 1)
  remember(KEYS[2], ARGV[4], tonumber(ARGV[3]), 'tried_truncated')
  remember(KEYS[3], ARGV[5], tonumber(ARGV[3]), 'addresses_truncated')
  keep(ARGV[2], ARGV[6], ARGV[7])
  return true
end
"""
)

_THROTTLE = (
    THROTTLE_LUA
    + """
if throttled() then return 1 end
return 0
"""
)

# ARGV: first ttl, kept, cap, tried, address, member, window end, generation, code.
# 0: the window's first failure (the caller audits it), 1: aggregated.
_RECORD = (
    _REMEMBER
    + """
redis.call('HSETNX', KEYS[1], 'gen', ARGV[8])
local failed = redis.call('HINCRBY', KEYS[1], 'failed', 1)
if failed == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 0
end
redis.call('HINCRBY', KEYS[1], 'aggregated', 1)
redis.call('HINCRBY', KEYS[1], 'code:' .. ARGV[9], 1)
remember(KEYS[2], ARGV[4], tonumber(ARGV[3]), 'tried_truncated')
remember(KEYS[3], ARGV[5], tonumber(ARGV[3]), 'addresses_truncated')
keep(ARGV[2], ARGV[6], ARGV[7])
return 1
"""
)

# ARGV: snapshot before, snapshot after, total after, member.
# 1: forgotten; 2: more arrived meanwhile, left for the next flush; 0: flushed elsewhere.
_FORGET = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[4])
  return 0
end
if (redis.call('HGET', KEYS[1], 'summarized') or '') ~= ARGV[1] then return 0 end
local total = tonumber(redis.call('HGET', KEYS[1], 'aggregated') or '0')
  + tonumber(redis.call('HGET', KEYS[1], 'throttled') or '0')
if total == tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[4], ARGV[4])
  return 1
end
redis.call('HSET', KEYS[1], 'summarized', ARGV[2])
return 2
"""


@dataclass(frozen=True)
class ThrottleCheck:
    """The keys and arguments of ``THROTTLE_LUA`` for one attempt."""

    kind: str
    window: Window
    limit: int
    keys: list[str]
    args: list[Any]

    @classmethod
    def of(cls, kind: FailureKind, address: str | None, *, tried: str | None) -> "ThrottleCheck":
        limit = conf.auth_failure_limit()
        window = Window.at(kind, address_key(address), time.time())
        return cls(
            kind=kind,
            window=window,
            limit=limit,
            keys=window.keys(),
            args=[
                limit,
                window.seconds + KEPT_SECONDS,
                TRIED_KEPT,
                _bounded(tried),
                address or "",
                window.member,
                window.end,
            ],
        )

    def refused(self) -> AuthenticationThrottled:
        """The 429 of an attempt the script refused (and counted)."""
        observe_auth_failure(kind=self.kind, outcome=Outcome.THROTTLED)
        retry_after = max(1, math.ceil(self.window.end - time.time()))
        return AuthenticationThrottled(self.limit, self.window.seconds, retry_after)


def throttle(kind: FailureKind, address: str | None, *, tried: str | None) -> None:
    """Refuse (``AuthenticationThrottled``, 429) an attempt from an address that failed
    ``AUTH_FAILURE_LIMIT`` times in this window, counting it; one Redis call, no
    database. Redis unreachable: let it through."""
    check = ThrottleCheck.of(kind, address, tried=tried)
    if _redis().call(_store().throttle, keys=check.keys, args=check.args):
        raise check.refused()


def failure_count(
    kind: FailureKind, address: str | None, *, tried: str | None, code: str
) -> Counted:
    """Count one failure: ``AUDITED`` for the first of its window (the caller records its
    event), ``AGGREGATED`` for the others (the window's summary will). Redis
    unreachable: ``AUDITED`` without a window."""
    window = Window.at(kind, address_key(address), time.time())
    aggregated = _redis().call(
        _store().record,
        keys=window.keys(),
        args=[
            2 * window.seconds + 60,  # a lone failure's count lives past its window, then goes
            window.seconds + KEPT_SECONDS,
            TRIED_KEPT,
            _bounded(tried),
            address or "",
            window.member,
            window.end,
            uuid.uuid4().hex[:16],  # the window's generation, if this call creates it
            code,
        ],
    )
    outcome = Outcome.AGGREGATED if aggregated else Outcome.AUDITED
    observe_auth_failure(kind=kind, outcome=outcome)
    return Counted(outcome=outcome, window=window if aggregated is not None else None)


def closed_windows(*, now: float | None = None, limit: int = 500) -> list[Window] | None:
    """Windows ended (``FLUSH_GRACE_SECONDS`` ago) with something to summarise, oldest
    first; None when Redis is unreachable."""
    cutoff = (time.time() if now is None else now) - FLUSH_GRACE_SECONDS
    members = _redis().call(
        lambda: _client().zrangebyscore(_pending_key(), "-inf", cutoff, start=0, num=limit)
    )
    if members is None:
        return None
    return [Window.from_member(member.decode()) for member in members]


def window_read(window: Window) -> WindowSummary | None:
    """What ``window`` holds beyond its last summary; None when there is nothing to read
    (flushed elsewhere, or Redis unreachable). A window whose counts expired before a
    flush found them is logged as an error and dropped from the index."""
    counts_key, tried_key, addresses_key, pending_key = window.keys()

    def read() -> list[Any]:
        pipeline = _client().pipeline(transaction=True)
        pipeline.zscore(pending_key, window.member)
        pipeline.hgetall(counts_key)
        pipeline.smembers(tried_key)
        pipeline.smembers(addresses_key)
        return pipeline.execute()

    result = _redis().call(read)
    if result is None:
        return None
    score, raw, tried, addresses = result
    if score is None:
        return None
    fields = {name.decode(): value.decode() for name, value in raw.items()}
    if not fields:
        logger.error(
            "Failed authentications of %s from %s in the window ending %s were lost before "
            "they were summarised (Redis expired or lost them); sergas_auth_failures_total "
            "still counts them",
            window.kind,
            window.key,
            window.end,
        )
        _redis().call(lambda: _client().zrem(pending_key, window.member))
        return None
    before = fields.get("summarized", "")
    counted = {
        name: int(value)
        for name, value in fields.items()
        if name in ("aggregated", "throttled") or name.startswith("code:")
    }
    previous = json.loads(before) if before else {}
    return WindowSummary(
        window=window,
        summary_id=f"{fields.get('gen', 'x')}-{_total(previous)}",
        counts={name: value - previous.get(name, 0) for name, value in counted.items()},
        tried=sorted(value.decode() for value in tried),
        tried_truncated="tried_truncated" in fields,
        addresses=sorted(value.decode() for value in addresses),
        addresses_truncated="addresses_truncated" in fields,
        snapshot_before=before,
        snapshot_after=json.dumps(counted, sort_keys=True),
        total=_total(counted),
    )


def window_forget(summary: WindowSummary) -> None:
    """Drop what ``summary`` recorded; anything counted since stays for the next flush."""
    _redis().call(
        _store().forget,
        keys=summary.window.keys(),
        args=[
            summary.snapshot_before,
            summary.snapshot_after,
            summary.total,
            summary.window.member,
        ],
    )


def _total(counts: dict[str, int]) -> int:
    return counts.get("aggregated", 0) + counts.get("throttled", 0)


def _bounded(tried: str | None) -> str:
    return (tried or "")[:150]


def _prefix() -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "sergas")


def _pending_key() -> str:
    return f"{_prefix()}:authfail:pending"


class _Store:
    """The Redis client (behind its guard) and the scripts registered on it."""

    def __init__(self, url: str) -> None:
        self.guard = RedisGuard(url, purpose="Authentication failures")
        self.throttle = self.guard.client.register_script(_THROTTLE)
        self.record = self.guard.client.register_script(_RECORD)
        self.forget = self.guard.client.register_script(_FORGET)


@functools.cache
def _store_for(url: str) -> _Store:
    return _Store(url)


def _store() -> _Store:
    return _store_for(settings.REDIS_URL)


def _redis() -> RedisGuard:
    return _store().guard


def redis_guard() -> RedisGuard:
    """The guarded client these counts live on (shared with ``access.admission``)."""
    return _store().guard


def _client() -> Any:
    return _store().guard.client
