"""Per-caller request rate for the API, counted in the Redis cache."""

import logging
import math
import re
import threading
import time

import redis
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from agents import conf

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

    One atomic ``INCR`` in Redis per request, so concurrent requests are counted exactly
    (ninja's ``SimpleRateThrottle`` reads and rewrites a list, losing counts under
    concurrency). If Redis is unreachable the API stays up: requests are let through.
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
        key = f"throttle:{principal.throttle_key}:{period}:{window}"
        self._local.wait = period - (now % period)
        try:
            count = self._count(key, period)
        except redis.RedisError as exc:
            logger.warning("API throttle: Redis unavailable (%s); not throttling", exc)
            return True
        return count <= limit

    def wait(self) -> float | None:
        return math.ceil(getattr(self._local, "wait", 1))

    @staticmethod
    def _count(key: str, period: int) -> int:
        try:
            return cache.incr(key)
        except ValueError:  # first request of the window (or the key just expired)
            if cache.add(key, 1, timeout=period + 1):
                return 1
            return cache.incr(key)
