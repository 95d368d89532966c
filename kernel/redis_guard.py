"""A Redis client that steps aside while Redis is down.

Redis backs conveniences (the session cache, the API throttle), never the truth, so a
Redis outage must not slow or fail requests: after an error the guard answers ``None``
without trying for ``retry_seconds``, then tries again. One guard per use keeps one
client (and its connection pool) for the life of the process.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import redis

logger = logging.getLogger(__name__)


class RedisGuard:
    def __init__(self, url: str, *, purpose: str, retry_seconds: float = 5.0) -> None:
        self.client = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.5)
        self.purpose = purpose
        self.retry_seconds = retry_seconds
        self._down_until = 0.0

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, or None when Redis is (or just was) unreachable."""
        if time.monotonic() < self._down_until:
            return None
        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            self._down_until = time.monotonic() + self.retry_seconds
            logger.warning(
                "%s: Redis unavailable (%s); going without it for %.0f s",
                self.purpose,
                exc,
                self.retry_seconds,
            )
            return None
