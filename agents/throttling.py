"""Per-caller request rate for the API, counted in Redis."""

import functools
import logging
import math
import re
import threading
import time

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from agents import conf
from sergas.redis_guard import RedisGuard

logger = logging.getLogger(__name__)


_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"3000/min"`` -> (3000, 60); ``"100/10s"`` -> (100, 10). ``ValueError`` otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*", rate or "")
    if not match or match.group(3) not in _PERIODS or int(match.group(1)) < 1:
        raise ValueError(f"'{rate}' is not a rate like 3000/min (periods: s, min, hour, day)")
    return int(match.group(1)), int(match.group(2) or 1) * _PERIODS[match.group(3)]


class CallerRateThrottle(BaseThrottle):
    """A fixed-window counter per token (or staff user), shared by every web process.

    One atomic ``INCR`` (pipelined with its ``EXPIRE``) per request on a client kept for
    the process, so concurrent requests are counted exactly (ninja's
    ``SimpleRateThrottle`` reads and rewrites a list, losing counts under concurrency).
    If Redis is unreachable the API stays up: requests are let through, and Redis is
    not tried again for a few seconds.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        principal = getattr(request, "auth", None)
        if principal is None:
            return True
        limit, period = parse_rate(conf.throttle_rate())
        now = time.time()
        window = int(now // period)
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "sergas")
        key = f"{prefix}:throttle:{principal.throttle_key}:{period}:{window}"
        self._local.wait = period - (now % period)
        count = _redis().call(self._count, key, period)
        return count is None or count <= limit

    def wait(self) -> float | None:
        return math.ceil(getattr(self._local, "wait", 1))

    @staticmethod
    def _count(key: str, period: int) -> int:
        pipeline = _redis().client.pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, period + 1)  # the window's key outlives the window, then goes
        count, _ = pipeline.execute()
        return int(count)


@functools.cache
def _redis() -> RedisGuard:
    return RedisGuard(settings.REDIS_URL, purpose="API throttle")
