"""Waking the long polls of approvals (``GET /api/v1/approvals/{id}?wait_seconds=``)
with Redis pub/sub.

Whatever ends an approval (a decision, its expiry, its session ending) publishes on the
approval's channel once its transaction commits. A waiting poll subscribes before it
looks at the approval, so a decision committed between its look and its wait is not
missed, then waits on the subscription alone: it holds a Redis connection, not a
database one, and costs nothing until the message comes. If Redis is away, waiting
polls look at PostgreSQL every ``APPROVAL_WAIT_FALLBACK_SECONDS`` instead; a
message published while Redis was away is lost, and the next look finds the outcome.
"""

import functools
import logging
import time
import uuid

import redis
from django.db import transaction
from redis.client import PubSub

from kernel.redis_guard import RedisGuard
from sessions import conf

logger = logging.getLogger(__name__)


def approval_channel(approval_id: uuid.UUID | str) -> str:
    return f"{conf.cache_key_prefix()}:approval:{approval_id}"


@functools.cache
def _guard() -> RedisGuard:
    return RedisGuard(
        conf.cache_redis_url(),
        purpose="Approval wake-ups",
        retry_seconds=conf.cache_redis_retry_seconds(),
    )


def approval_changed_on_commit(approval_id: uuid.UUID | str) -> None:
    """Wake the polls waiting on the approval once this transaction commits."""
    channel = approval_channel(approval_id)
    transaction.on_commit(lambda: _guard().call(_guard().client.publish, channel, b"1"))


class ApprovalWaiter:
    """A subscription to one approval's channel: enter it before looking at the
    approval, then ``wait``. Without Redis it waits the fallback interval."""

    def __init__(self, approval_id: uuid.UUID | str) -> None:
        self._channel = approval_channel(approval_id)
        self._pubsub: PubSub | None = None

    def __enter__(self) -> "ApprovalWaiter":
        pubsub = _guard().client.pubsub()
        # Subscribed only once Redis confirms: a message published after that reaches us.
        confirmed = _guard().call(self._subscribe, pubsub)
        if confirmed:
            self._pubsub = pubsub
        else:
            pubsub.close()
        return self

    def _subscribe(self, pubsub: PubSub) -> bool:
        pubsub.subscribe(self._channel)
        reply = pubsub.get_message(timeout=conf.approval_wait_fallback_seconds())
        return reply is not None and reply.get("type") == "subscribe"

    def __exit__(self, *exc: object) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a message; True if one came. Look at the
        approval again either way (without Redis this returns after the fallback
        interval)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while (left := deadline - time.monotonic()) > 0:
            if self._pubsub is None:
                time.sleep(min(left, conf.approval_wait_fallback_seconds()))
                return False
            try:
                message = self._pubsub.get_message(timeout=left)
            except redis.RedisError as exc:
                logger.warning("Approval wake-ups: Redis broke while waiting (%s)", exc)
                self._pubsub.close()
                self._pubsub = None
                continue
            if message is not None and message.get("type") == "message":
                return True
        return False
