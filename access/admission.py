"""Admission of requests made with a token this process has verified, mostly without
a round trip to Redis.

Such a request needs three answers: may its address still try tokens
(``access.failures``), was the token revoked in another process (the mark
``access.token_cache`` writes), and is its caller within its rate
(``access.throttling``). A process asks Redis all three in one Lua script and keeps the
answer as a *ticket* for that token and address. A ticket holds a *lease* of the
caller's rate: a block of requests (``lease_size``) reserved in the caller's counter for
the current window. Requests under a valid ticket cost nothing outside the process; a
ticket ends with its lease, with its window, or after ``ADMISSION_SECONDS`` (1 s), and
the next request takes a new one, giving back what the old lease did not use.

What this bounds (docs/api.md, "Rate limits"; ``ADMISSION_SECONDS`` = 0 asks Redis on
every request, with leases of one request: the exact counting of the previous release):

- a caller never makes more than its rate per window: the counter holds the requests
  served plus the leases outstanding, and a lease is only granted below the limit. A
  caller at its limit through several processes (or addresses: a ticket is per token
  and address) may be refused up to one lease per other ticket early in a window;
- a token revoked in another process is refused within ``ADMISSION_SECONDS`` (in its
  own process at once);
- an address that reaches the failed-authentication limit is refused for tokens this
  process had already verified within ``ADMISSION_SECONDS``; an unverified token is
  never looked up from it, as before.

While Redis is unreachable no ticket is granted: the caller reads PostgreSQL on every
request and the rate is not counted, as before.
"""

import threading
import time
from dataclasses import dataclass
from enum import Enum
from time import monotonic

from cachetools import TTLCache
from redis.commands.core import Script

from access import conf, failures
from access.throttling import RateDecision, RateWindow, parse_rate
from access.token_cache import revocation_mark_key
from kernel.redis_guard import RedisGuard

# The largest lease, and the share of a rate one lease takes (so small rates stay exact).
LEASE_MAX = 100
LEASE_DIVISOR = 100
TICKETS_KEPT = 4096

# KEYS 1-4, ARGV 1-7: the failure throttle's. KEYS[5]: the token's revocation mark.
# KEYS[6]: the caller's counter; ARGV 8-11: its expiry, the lease asked for, the unused
# rest of this process's previous lease in the window, the limit.
# -> {0, granted} | {1} the address is throttled (counted) | {2} the token was revoked.
_ADMIT = (
    failures.THROTTLE_LUA
    + """
if throttled() then return {1} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {2} end
local used = math.max(0, tonumber(redis.call('GET', KEYS[6]) or '0') - tonumber(ARGV[10]))
local granted = math.max(0, math.min(tonumber(ARGV[9]), tonumber(ARGV[11]) - used))
redis.call('SET', KEYS[6], used + granted, 'EX', ARGV[8])
return {0, granted}
"""
)


class Outcome(Enum):
    ADMITTED = 0
    THROTTLED = 1  # the address failed too often: 429 (already counted)
    REVOKED = 2  # a revocation mark names the token: ask PostgreSQL


@dataclass
class _Ticket:
    window: int
    until: float  # monotonic() deadline
    left: int  # requests left of the lease


@dataclass(frozen=True)
class Admission:
    outcome: Outcome
    check: failures.ThrottleCheck | None = None  # set when THROTTLED
    rate: RateDecision | None = None  # set when ADMITTED


_tickets: TTLCache[tuple[str, str], _Ticket] = TTLCache(maxsize=TICKETS_KEPT, ttl=3600)
_lock = threading.Lock()


def lease_size(limit: int) -> int:
    if conf.admission_seconds() <= 0:
        return 1
    return max(1, min(LEASE_MAX, limit // LEASE_DIVISOR))


def admit(*, digest: str, prefix: str, address: str | None, throttle_key: str) -> Admission | None:
    """Admit a request of the verified token ``digest`` from ``address``: under its
    ticket, or with a new one from Redis; None when Redis is unreachable."""
    limit, period = parse_rate(conf.throttle_rate())
    now = time.time()
    window = int(now // period)
    wait = period - now % period
    ticket_key = (digest, address or "")
    with _lock:
        ticket = _tickets.get(ticket_key)
        if (
            ticket is not None
            and ticket.left > 0
            and ticket.window == window
            and monotonic() < ticket.until
        ):
            ticket.left -= 1
            return Admission(Outcome.ADMITTED, rate=RateDecision(allowed=True, wait=wait))
        _tickets.pop(ticket_key, None)
    unused = ticket.left if ticket is not None and ticket.window == window else 0
    check = failures.ThrottleCheck.of(failures.FailureKind.API_TOKEN, address, tried=prefix)
    rate = RateWindow.of(throttle_key)
    guard, script = _script()
    result = guard.call(
        script,
        keys=[*check.keys, revocation_mark_key(prefix), rate.key],
        args=[*check.args, rate.expiry, lease_size(limit), unused, limit],
    )
    if result is None:
        return None
    outcome = Outcome(int(result[0]))
    if outcome is not Outcome.ADMITTED:
        return Admission(outcome, check=check)
    granted = int(result[1])
    if granted > 1:
        until = monotonic() + conf.admission_seconds()
        with _lock:
            _tickets[ticket_key] = _Ticket(window=window, until=until, left=granted - 1)
    return Admission(Outcome.ADMITTED, rate=RateDecision(allowed=granted > 0, wait=wait))


def forget_tickets() -> None:
    with _lock:
        _tickets.clear()


_scripts: dict[int, tuple[RedisGuard, Script]] = {}


def _script() -> tuple[RedisGuard, Script]:
    # The failure counts' client: one outage makes both step aside together.
    guard = failures.redis_guard()
    found = _scripts.get(id(guard))
    if found is None or found[0] is not guard:
        found = _scripts[id(guard)] = (guard, guard.client.register_script(_ADMIT))
    return found
