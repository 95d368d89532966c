"""Per-caller request rate for the API, counted in Redis."""

import functools
import logging
import math
import re
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from access import conf
from kernel.redis_guard import RedisGuard

logger = logging.getLogger(__name__)


_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}

# Where ``access.auth`` leaves the rate decision of its admission, if it made one.
DECIDED = "_sergas_rate_decided"


@functools.lru_cache(maxsize=16)
def parse_rate(rate: str) -> tuple[int, int]:
    """``"3000/min"`` -> (3000, 60); ``"100/10s"`` -> (100, 10). ``ValueError`` otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*", rate or "")
    if not match or match.group(3) not in _PERIODS or int(match.group(1)) < 1:
        raise ValueError(f"'{rate}' is not a rate like 3000/min (periods: s, min, hour, day)")
    return int(match.group(1)), int(match.group(2) or 1) * _PERIODS[match.group(3)]


@dataclass(frozen=True)
class RateWindow:
    """A caller's current fixed window: its counter's key, the limit, and how long until
    the window ends."""

    key: str
    limit: int
    period: int
    wait: float

    @classmethod
    def of(cls, throttle_key: str) -> "RateWindow":
        limit, period = parse_rate(conf.throttle_rate())
        now = time.time()
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "sergas")
        return cls(
            key=f"{prefix}:throttle:{throttle_key}:{period}:{int(now // period)}",
            limit=limit,
            period=period,
            wait=period - (now % period),
        )

    @property
    def expiry(self) -> int:
        """The counter outlives its window by a second, then goes."""
        return self.period + 1


@dataclass(frozen=True)
class RateDecision:
    """What ``access.admission`` decided for a request: within the rate or not, and the
    seconds until its window ends."""

    allowed: bool
    wait: float


class CallerRateThrottle(BaseThrottle):
    """A fixed-window counter per token (or staff user), shared by every web process.

    One atomic ``INCR`` (with its ``EXPIRE``) per request on a client kept for the
    process, so concurrent requests are counted exactly (ninja's ``SimpleRateThrottle``
    reads and rewrites a list, losing counts under concurrency). A request with an agent
    token was already decided by ``access.admission`` (under a lease of the same
    counter); this only reads the decision. If Redis is unreachable the API stays up:
    requests are let through, and Redis is not tried again for a few seconds.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        principal = getattr(request, "auth", None)
        if principal is None:
            return True
        decided: RateDecision | None = getattr(request, DECIDED, None)
        if decided is not None:
            self._local.wait = decided.wait
            return decided.allowed
        window = RateWindow.of(principal.throttle_key)
        count = _redis().call(self._count, window)
        self._local.wait = window.wait
        return count is None or count <= window.limit

    def wait(self) -> float | None:
        return math.ceil(getattr(self._local, "wait", 1))

    @staticmethod
    def _count(window: RateWindow) -> int:
        pipeline = _redis().client.pipeline(transaction=False)
        pipeline.incr(window.key)
        pipeline.expire(window.key, window.expiry)
        count, _ = pipeline.execute()
        return int(count)


@functools.cache
def _redis() -> RedisGuard:
    return RedisGuard(settings.REDIS_URL, purpose="API throttle")
